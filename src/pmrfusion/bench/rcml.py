"""The RCML benchmark protocol (Xu et al., AAAI 2024): runs, normal vs conflictive test sets, uncertainty.

`run_rcml` reproduces the protocol of RCML's code: whole-dataset min-max scaling, a random 80/20
split per run (seeded by the run), training for a fixed number of epochs without validation (last
epoch kept), and evaluation on the normal and on the conflictive test set of the run
(`pmrfusion.data.rcml.conflictive_test`). Each record holds accuracy and, for methods whose output
carries ``uncertainty`` (``tmc``, ``ecml``), the mean uncertainty: RCML Fig. 3 analogue.

The registered protocol ``rcml`` (conditions ``normal`` / ``conflictive``) lets the project's own
runner apply the same corruption to its own test split. It only sees the test split, so the class
prototypes are the first *test* row of each class (the full RCML construction takes the first row
of the whole dataset; use `run_rcml` for the exact protocol).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import pmrfusion.eval.rcml_protocol  # noqa: F401  (registers the `rcml` protocol)
from pmrfusion.bench.runner import RunSpec, run_grid
from pmrfusion.bench.task_registry import Task, register_task
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.rcml import conflictive_test, minmax_whole
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError, check_distinct
from pmrfusion.eval.metrics import sample_std
from pmrfusion.methods.base import FusionModel, method_config
from pmrfusion.paths import atomic_write_text, run_folder
from pmrfusion.train.trainer import TrainConfig, seed_range

# RCML Tables 2 and 3 (accuracy %, mean, std), see shared/data/REFERENCE_RESULTS.md.
PUBLISHED = {
    ("handwritten", "tmc", "normal"): (98.51, 0.13),
    ("handwritten", "ecml", "normal"): (99.40, 0.00),
    ("cub", "tmc", "normal"): (90.57, 2.96),
    ("cub", "ecml", "normal"): (98.50, 2.75),
    ("pie", "tmc", "normal"): (91.85, 0.23),
    ("pie", "ecml", "normal"): (94.71, 0.02),
    ("handwritten", "tmc", "conflictive"): (92.76, 0.15),
    ("handwritten", "ecml", "conflictive"): (94.40, 0.05),
    ("cub", "tmc", "conflictive"): (73.37, 2.16),
    ("cub", "ecml", "conflictive"): (76.50, 1.15),
    ("pie", "tmc", "conflictive"): (61.65, 1.03),
    ("pie", "ecml", "conflictive"): (84.00, 0.14),
}

# Official optimiser settings (TMC lr 3e-4, RCML lr 3e-3; both torch.optim.Adam(weight_decay=1e-5),
# i.e. L2 added to the gradient, not AdamW's decoupled decay; batch 200, 500 epochs). Every method
# of the runner trains with that optimizer.
OFFICIAL_LR = {"tmc": 3e-4, "ecml": 3e-3}
OPTIMIZER = "adam"
MAX_RUNS = 10_000  # runs of one benchmark (run k is seed k)
TEST_SETS = ("normal", "conflictive")


@dataclass
class RCMLSpec:
    methods: Sequence[str]
    runs: int = 10
    epochs: int = 500
    batch_size: int = 200
    lr: float = 1e-3  # methods without an official setting (OFFICIAL_LR wins for tmc / ecml)
    weight_decay: float = 1e-5
    method_overrides: dict[str, dict] = field(default_factory=dict)  # method -> config overrides
    method_lr: dict[str, float] = field(default_factory=dict)  # method -> lr, wins over OFFICIAL_LR

    def __post_init__(self) -> None:
        """Every setting checked before any data is loaded or trained on."""
        if isinstance(self.methods, str) or not self.methods:
            raise PMRFusionError("RCMLSpec.methods must be a non-empty sequence of method names")
        check_distinct(self.methods, "methods")
        if isinstance(self.runs, int) and MAX_RUNS < self.runs <= 2**32:  # beyond: seed_range's error
            raise PMRFusionError(f"--runs {self.runs}: at most {MAX_RUNS} runs")
        seed_range(self.runs, what="runs")  # run k is seed k
        for where in (self.method_lr, self.method_overrides):
            stray = sorted(set(where) - set(self.methods))
            if stray:
                chosen = ", ".join(self.methods)
                raise PMRFusionError(f"settings for methods {stray} that are not selected ({chosen})")
        for m in self.methods:
            method_config(m, **self.method_overrides.get(m, {}))
            self.train_config(m, 0)

    def lr_for(self, method: str) -> float:
        return self.method_lr.get(method, OFFICIAL_LR.get(method, self.lr))

    def train_config(self, method: str, run: int) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr_for(method),
            weight_decay=self.weight_decay,
            optimizer=OPTIMIZER,
            seed=run,
        )


@torch.no_grad()
def accuracy_and_uncertainty(model: FusionModel, split: TensorSplit) -> tuple[float, float]:
    """(accuracy, mean uncertainty or NaN) of `model` on `split`, eval mode."""
    model.eval()
    out = model(split.features, torch.ones(len(split), len(split.features), dtype=torch.bool))
    acc = float((out.logits.argmax(-1) == split.labels).float().mean())
    unc = float(out.uncertainty.mean()) if out.uncertainty is not None else math.nan
    return acc, unc


def _rcml_evaluate(model, prepared, protocols, seed: int, base: dict, options: dict) -> list[dict]:
    """Task "rcml": accuracy and mean uncertainty on run `seed`'s normal and conflictive test sets
    (the conflictive set from the whole-dataset min-max features, as RCML's code builds it)."""
    data = prepared.data
    scaled = minmax_whole(data.features)
    conflict = conflictive_test(scaled, data.labels, prepared.test.index.numpy(), data.num_classes, seed)
    records = []
    for name, split in (("normal", prepared.test), ("conflictive", conflict)):
        acc, unc = accuracy_and_uncertainty(model, split)
        for metric, value in (("accuracy", acc), ("uncertainty", unc)):
            records.append({**base, "protocol": "rcml", "condition": f"rcml:{name}",
                            "present": list(prepared.modalities), "seed": seed, "metric": metric,
                            "value": value})  # fmt: skip
    return records


RCML_TASK = register_task(Task("rcml", _rcml_evaluate, uses_protocols=False, feature_vectors_only=True))


def rcml_rows(records: list[dict]) -> list[dict]:
    """Task "rcml" records of one cell as rows {dataset, method, run, test_set, accuracy, uncertainty}."""
    rows: dict[str, dict] = {}
    for r in records:
        test_set = r["condition"].split(":", 1)[1]
        row = rows.setdefault(test_set, {"dataset": r["dataset"], "method": r["method"], "run": r["seed"],
                                         "test_set": test_set})  # fmt: skip
        row[r["metric"]] = r["value"]
    return [rows[t] for t in TEST_SETS if t in rows]


def run_spec(spec: RCMLSpec) -> RunSpec:
    """`spec` as the runner's spec: RCML splitting, task "rcml", run k = seed k, per-method lr."""
    return RunSpec(
        list(spec.methods), (), list(range(spec.runs)), task="rcml", splitting="rcml",
        method_options={m: dict(o) for m, o in spec.method_overrides.items()},
        method_train={m: spec.train_config(m, 0) for m in spec.methods},
    )  # fmt: skip


def run_rcml(
    data: MultimodalData,
    spec: RCMLSpec,
    on_cell: Callable[[str, int, dict], None] | None = None,
    skip: frozenset[tuple[str, int]] = frozenset(),
) -> list[dict]:
    """Rows {dataset, method, run, test_set, accuracy, uncertainty} for every method and run not in
    `skip` ((method, run) pairs already done): the runner's `run_grid` under RCML's splitting."""
    rows: list[dict] = []

    def on_records(method: str, run: int, records: list[dict]) -> None:
        for row in rcml_rows(records):
            rows.append(row)
            if on_cell is not None:
                on_cell(method, run, row)

    run_grid(data, run_spec(spec), skip=skip, on_records=on_records)
    return rows


def summarize_rcml(records: list[dict]) -> list[dict]:
    """Mean and sample std (ddof = 1) over runs per (dataset, method, test set), in %, beside RCML's
    published numbers."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["method"], r["test_set"]), []).append(r)
    rows = []
    for (ds, method, test_set), recs in groups.items():
        acc = np.array([r["accuracy"] for r in recs]) * 100
        unc = np.array([r["uncertainty"] for r in recs], dtype=float)
        pub = PUBLISHED.get((ds.lower(), method, test_set))
        rows.append(
            {
                "dataset": ds,
                "method": method,
                "test_set": test_set,
                "runs": len(recs),
                "acc_mean": round(float(acc.mean()), 2),
                "acc_std": round(sample_std(acc), 2) if len(acc) > 1 else math.nan,
                "uncertainty_mean": round(float(unc.mean()), 4) if np.isfinite(unc).all() else math.nan,
                "published_mean": pub[0] if pub else math.nan,
                "published_std": pub[1] if pub else math.nan,
                "gap": round(float(acc.mean()) - pub[0], 2) if pub else math.nan,
            }
        )
    return rows


RECORD_FIELDS = ["dataset", "method", "run", "test_set", "accuracy", "uncertainty"]


def rcml_benchmark(
    datasets: Sequence[str],
    spec: RCMLSpec,
    out_dir: str,
    data_root: str | None = None,
    resume: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> Path:
    """Run `run_rcml` on every dataset; append records to ``records.csv`` as each run finishes, then
    write ``summary.csv`` (`summarize_rcml`) of the selected datasets, methods and runs. Returns the
    summary path.

    An OUT whose records.csv holds records is refused unless `resume`: then the (dataset, method,
    run) cells already there (both test sets) are kept and not rerun, a row cut off by a stop is
    dropped (its run is rerun), and ``settings.json`` must match `spec` (epochs, batch, weight decay,
    optimizer, lr). `on_note` hears what was dropped or kept outside the selection.
    """
    from pmrfusion.data.loaders import load_feature_dataset

    note = on_note or (lambda text: None)
    if isinstance(datasets, str) or not datasets:
        raise PMRFusionError("--datasets: give at least one dataset")
    check_distinct(datasets, "datasets")
    for m in spec.methods:
        method_config(m, **spec.method_overrides.get(m, {}))  # fail before anything is written
    out = Path(out_dir)
    rec_path, settings_path, summary_path = out / "records.csv", out / "settings.json", out / "summary.csv"
    for path in (rec_path, settings_path, summary_path):
        if path.exists() and not path.is_file():
            raise PMRFusionError(f"{path} is a folder (not a file) where rcml writes a file; remove it")
    if resume:
        kept, old_settings = _resumable_records(rec_path, settings_path, spec, note)
    else:
        _refuse_records(rec_path)
        kept, old_settings = [], {}
    loaded = {name: load_feature_dataset(name, "rcml", data_root) for name in datasets}
    settings = {**old_settings, **_settings(spec)}  # the kept records' methods keep their entries
    records: list[dict] = list(kept)
    done = {(r["dataset"], r["method"], r["run"]) for r in kept}
    with run_folder(out) as removed:
        for path in removed:
            note(f"removed {path.name}, a temporary file of a run that was killed")
        atomic_write_text(settings_path, json.dumps(settings, indent=1, sort_keys=True) + "\n")
        _write_csv(rec_path, kept, RECORD_FIELDS)
        try:
            with rec_path.open("a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=RECORD_FIELDS)

                def on_cell(method: str, run: int, rec: dict) -> None:
                    writer.writerow(rec)
                    fh.flush()

                for name, data in loaded.items():
                    data = dataclasses.replace(data, name=name)
                    skip = frozenset((m, r) for (d, m, r) in done if d == name)
                    records.extend(run_rcml(data, spec, on_cell, skip))
        except OSError as e:
            raise PMRFusionError(
                f"cannot write {rec_path}: {e.strerror or e}; the finished runs in it are kept "
                "(--resume runs the rest)"
            ) from None
        def chosen(r: dict) -> bool:
            return r["dataset"] in loaded and r["method"] in spec.methods and r["run"] < spec.runs

        selected = [r for r in records if chosen(r)]
        outside = len({(r["dataset"], r["method"], r["run"]) for r in records if not chosen(r)})
        if outside:
            note(f"{rec_path} keeps {outside} finished runs outside this selection (not in the summary)")
        return write_summary(selected, summary_path)


def _settings(spec: RCMLSpec) -> dict:
    """Per method, the settings a record depends on (to refuse resuming under other settings)."""
    return {
        m: {
            "epochs": spec.epochs,
            "batch_size": spec.batch_size,
            "weight_decay": spec.weight_decay,
            "optimizer": OPTIMIZER,
            "lr": spec.lr_for(m),
            "overrides": spec.method_overrides.get(m, {}),
        }
        for m in spec.methods
    }


def _refuse_records(rec_path: Path) -> None:
    """Without --resume, an OUT that holds records is not overwritten."""
    if not rec_path.is_file():
        return
    try:
        with rec_path.open("rb") as fh:
            rows = sum(1 for line in fh if line.strip())
    except OSError as e:
        raise PMRFusionError(f"cannot read {rec_path}: {e.strerror or e}") from None
    if rows > 1:  # more than the header
        raise PMRFusionError(
            f"{rec_path} holds {rows - 1} rcml records: --resume keeps them and runs the rest, "
            "or use another --out"
        )


def _read_settings(settings_path: Path) -> dict:
    """OUT/settings.json: method -> its settings (an object per method)."""
    try:
        old = json.loads(settings_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        why = f"{settings_path} is unreadable ({e})"
        raise PMRFusionError(f"cannot resume: {why}; use another --out") from None
    if not isinstance(old, dict) or not all(isinstance(v, dict) for v in old.values()):
        raise PMRFusionError(
            f"cannot resume: {settings_path} is not an object of per-method settings; use another --out"
        )
    return old


def _resumable_records(
    rec_path: Path, settings_path: Path, spec: RCMLSpec, note: Callable[[str], None]
) -> tuple[list[dict], dict]:
    """(the complete cells of an earlier run with the same settings (both test sets of a run), its
    settings)."""
    if not rec_path.is_file():
        return [], {}
    if not settings_path.is_file():
        raise PMRFusionError(f"cannot resume: {settings_path} is missing (records of unknown settings)")
    old = _read_settings(settings_path)
    for m, now in _settings(spec).items():
        if m in old and old[m] != now:
            raise PMRFusionError(f"cannot resume: {m} was run with {old[m]}, now {now}; use another --out")
    records, cut = _parse_records(rec_path, partial_tail=True)
    if cut:
        note(f"{rec_path}: dropped line {cut}, cut off when the run stopped; that run is rerun")
    unknown = sorted({r["method"] for r in records} - set(old))
    if unknown:
        raise PMRFusionError(
            f"cannot resume: {rec_path} holds runs of {', '.join(unknown)}, which {settings_path} has no "
            "settings for; use another --out"
        )
    sets: dict[tuple, set[str]] = {}
    for r in records:
        sets.setdefault((r["dataset"], r["method"], r["run"]), set()).add(r["test_set"])
    complete = {k for k, v in sets.items() if v >= set(TEST_SETS)}
    return [r for r in records if (r["dataset"], r["method"], r["run"]) in complete], old


def read_records(path: str | Path) -> list[dict]:
    """Records written by `rcml_benchmark` (numbers parsed); a malformed or cut-off row is an error
    naming its line."""
    return _parse_records(Path(path), partial_tail=False)[0]


def _parse_records(path: Path, partial_tail: bool) -> tuple[list[dict], int]:
    """(the records of `path`, the line number of a cut-off last row that was dropped, or 0).

    Rows are appended whole (ending in a newline), so a file that does not end in one was stopped
    inside its last row: dropped with `partial_tail`, an error otherwise.
    """
    if not path.is_file():
        raise PMRFusionError(f"rcml records file not found: {path}")
    columns = ", ".join(RECORD_FIELDS)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PMRFusionError(f"cannot read {path} as rcml records ({columns}): {e}") from None
    cut = 0
    if text and not text.endswith("\n"):
        cut = text.count("\n") + 1
        if not partial_tail:
            raise PMRFusionError(
                f"{path}: line {cut} is cut off (the run stopped while writing it); "
                "`pmrfusion rcml --resume` reruns that run"
            )
        text = text[: text.rfind("\n") + 1]
    records: list[dict] = []
    seen: dict[tuple, int] = {}
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not set(RECORD_FIELDS) <= set(reader.fieldnames or []):
            raise ValueError(f"columns {reader.fieldnames}")
        for row in reader:
            line = reader.line_num
            rec = _parse_row(row, line)
            key = (rec["dataset"], rec["method"], rec["run"], rec["test_set"])
            if key in seen:
                raise ValueError(f"line {line} repeats the {'/'.join(map(str, key))} of line {seen[key]}")
            seen[key] = line
            records.append(rec)
    except (csv.Error, ValueError) as e:
        raise PMRFusionError(f"cannot read {path} as rcml records ({columns}): {e}") from None
    return records, cut


def _parse_row(row: dict, line: int) -> dict:
    """One records.csv row with its numbers parsed and checked (ValueError naming `line`)."""
    if None in row or any(row.get(k) is None for k in RECORD_FIELDS):
        raise ValueError(f"line {line} does not have the {len(RECORD_FIELDS)} fields")
    try:
        run, acc, unc = int(row["run"]), float(row["accuracy"]), float(row["uncertainty"])
    except ValueError as e:
        raise ValueError(f"line {line}: {e}") from None
    if not row["dataset"] or not row["method"] or row["test_set"] not in TEST_SETS or run < 0:
        raise ValueError(f"line {line}: not a record of a dataset, method, run >= 0 and test set {TEST_SETS}")
    if not 0.0 <= acc <= 1.0:
        raise ValueError(f"line {line}: accuracy {acc} is not in [0, 1]")
    return {**row, "run": run, "accuracy": acc, "uncertainty": unc}


def write_summary(records: list[dict], path: str | Path) -> Path:
    rows = summarize_rcml(records)
    path = Path(path)
    _write_csv(path, rows, list(rows[0]) if rows else ["dataset"])
    return path


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    """Header + `rows` to `path`, atomically (a failed write: `WriteError`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def summary_markdown(rows: list[dict]) -> str:
    """A markdown table of `summarize_rcml` rows: ours (mean ± std, mean uncertainty) vs published."""
    lines = [
        "| dataset | method | test set | runs | accuracy % | mean uncertainty | RCML paper | gap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unc, pub = float(r["uncertainty_mean"]), float(r["published_mean"])
        unc_txt = "" if math.isnan(unc) else f"{unc:.3f}"
        pub_txt = "" if math.isnan(pub) else f"{pub:.2f} ± {float(r['published_std']):.2f}"
        gap_txt = "" if math.isnan(pub) else f"{float(r['gap']):+.2f}"
        acc_txt = f"{float(r['acc_mean']):.2f} ± {float(r['acc_std']):.2f}"
        if int(r["runs"]) == 1:  # one run has no spread
            acc_txt = f"{float(r['acc_mean']):.2f} (n = 1)"
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['test_set']} | {r['runs']} | {acc_txt} | "
            f"{unc_txt} | {pub_txt} | {gap_txt} |"
        )
    return "\n".join(lines)



__all__ = [
    "OFFICIAL_LR",
    "PUBLISHED",
    "RCMLSpec",
    "accuracy_and_uncertainty",
    "rcml_benchmark",
    "read_records",
    "run_rcml",
    "summarize_rcml",
    "write_summary",
]
