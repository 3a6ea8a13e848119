"""Result records: the typed `Record`, durable writing, the suite's cells/ layout, summaries.

This module is the only place that knows
- a record's fields (`Record`, `RECORD_KEYS`) and how condition names are parsed (`parse_condition`);
- the one "mean ± std (worst)" text (`format_mean_std_worst`);
- the files of a results folder: results.json/.csv/.md (`write_results`, `read_records`) and a
  suite's suite.json + cells/<dataset>__<method>__seed<k>.json (`cell_path`, `store_cell`,
  `read_cell`, `read_cells`, `claim_suite`).

Writes are atomic and durable (`pmrfusion.paths.atomic_write_text`: a temporary file in the same
folder, fsynced, renamed over the target, then the folder fsynced; files get the user's umask).
Each cell file carries a SHA-256 of its payload; a truncated or tampered cell reads as
unfinished and is recomputed.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.metrics import sample_std
from pmrfusion.eval.regression_metrics import LOWER_IS_BETTER, primary_metric
from pmrfusion.paths import atomic_write_text

RECORD_KEYS = ("dataset", "method", "protocol", "condition", "present", "seed", "metric", "value")


# ----------------------------------------------------------------------------- the record


@dataclass
class Record:
    """One measured value: a metric of one method on one dataset, condition and seed."""

    dataset: str
    method: str
    protocol: str
    condition: str
    present: list[str]
    seed: int
    metric: str
    value: float
    extra: dict[str, Any] = field(default_factory=dict)  # any further keys, kept in order

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        missing = [k for k in RECORD_KEYS if k not in d]
        if missing:
            raise PMRFusionError(f"record lacks {', '.join(missing)}: {d}")
        present = d["present"]
        if isinstance(present, str):
            present = [p for p in present.split("+") if p]
        extra = {k: v for k, v in d.items() if k not in RECORD_KEYS}
        return cls(
            str(d["dataset"]), str(d["method"]), str(d["protocol"]), str(d["condition"]),
            list(present), int(d["seed"]), str(d["metric"]), float(d["value"]), extra,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**d, **extra}


def parse_condition(condition: str) -> tuple[str, float | None]:
    """'gaussian:5' -> ('gaussian', 5.0); 'missing:-img' -> ('missing', None); 'clean' -> ('clean', None).

    The one parser of condition names: protocol name before ':', a numeric level after it if any.
    """
    name, _, level = condition.partition(":")
    try:
        return name, float(level) if level else None
    except ValueError:
        return name, None


def format_stats(mean: float, std: float, worst: float, digits: int = 4, slash: bool = False) -> str:
    """The one 'mean ± std (worst)' text ('mean ± std / worst' with `slash`, an older page's style)."""
    if slash:
        return f"{mean:.{digits}f} ± {std:.{digits}f} / {worst:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({worst:.{digits}f})"


def format_mean_std_worst(
    values: Sequence[float] | np.ndarray,
    scale: float = 1.0,
    digits: int = 4,
    empty: str = "",
    lower_is_better: bool = False,
) -> str:
    """'mean ± std (worst)' over seeds (sample std, ddof 1; worst = min, or max when
    `lower_is_better`, e.g. MAE) of `scale * values`."""
    v = np.asarray(values, dtype=float)
    if not v.size:
        return empty
    worst = v.max() if lower_is_better else v.min()
    return format_stats(scale * v.mean(), scale * sample_std(v), scale * worst, digits)


@dataclass
class SummaryRow:
    dataset: str
    method: str
    protocol: str
    condition: str
    metric: str
    mean: float
    std: float
    worst: float
    seeds: int


def summarise(records: Iterable[dict], metric: str = "accuracy") -> list[SummaryRow]:
    """Mean, sample std (ddof 1) and worst seed per (dataset, method, protocol, condition); the worst
    seed of a lower-is-better metric (MAE) is its largest value."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in records:
        if r["metric"] == metric:
            groups[(r["dataset"], r["method"], r["protocol"], r["condition"])].append(float(r["value"]))
    rows = []
    for (ds, meth, proto, cond), vals in groups.items():
        v = np.asarray(vals)
        worst = v.max() if metric in LOWER_IS_BETTER else v.min()
        rows.append(SummaryRow(ds, meth, proto, cond, metric, v.mean(), sample_std(v), worst, len(v)))
    return rows


def per_seed_means(records: Iterable[dict], method: str, predicate, metric: str = "accuracy") -> np.ndarray:
    """Per seed (in seed order), the average over the conditions selected by `predicate`."""
    per_seed: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r["method"] == method and r["metric"] == metric and predicate(r):
            per_seed[r["seed"]].append(float(r["value"]))
    return np.array([np.mean(v) for _, v in sorted(per_seed.items())])


def group_mean(records: Iterable[dict], method: str, predicate, metric: str = "accuracy") -> float:
    """Mean over seeds of the per-seed average across the conditions selected by `predicate`."""
    values = per_seed_means(records, method, predicate, metric)
    return float(values.mean()) if len(values) else float("nan")


def is_leave_one_out(r: dict, num_modalities: int, protocol: str = "missing") -> bool:
    return r["protocol"] == protocol and len(r["present"]) == num_modalities - 1


def is_keep_one(r: dict, protocol: str = "missing") -> bool:
    return r["protocol"] == protocol and len(r["present"]) == 1


def _fmt_row(r: SummaryRow) -> str:
    return format_stats(r.mean, r.std, r.worst)


def summary_grid(rows: list[SummaryRow]) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """(methods, [(dataset, condition, cells)]): one cell per method, mean ± std (worst seed)."""
    methods = list(dict.fromkeys(r.method for r in rows))
    conds = list(dict.fromkeys((r.dataset, r.protocol, r.condition) for r in rows))
    cell = {(r.dataset, r.protocol, r.condition, r.method): r for r in rows}
    grid = []
    for ds, proto, cond in conds:
        vals = []
        for m in methods:
            r = cell.get((ds, proto, cond, m))
            vals.append(_fmt_row(r) if r else "")
        grid.append((ds, cond, vals))
    return methods, grid


def markdown_table(rows: list[SummaryRow]) -> str:
    """One row per condition, one column per method: mean ± std (worst seed)."""
    methods, grid = summary_grid(rows)
    out = io.StringIO()
    out.write("| dataset | condition | " + " | ".join(methods) + " |\n")
    out.write("|---|---|" + "---|" * len(methods) + "\n")
    for ds, cond, vals in grid:
        out.write(f"| {ds} | {cond} | " + " | ".join(vals) + " |\n")
    return out.getvalue()


def write_results(out_dir: Path, records: list[dict], header: str = "") -> None:
    """results.json (list of records), results.csv and results.md, each written atomically."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "results.json", json.dumps(records, indent=1) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RECORD_KEYS, extrasaction="ignore")
    w.writeheader()
    for r in records:
        w.writerow({**r, "present": "+".join(r["present"])})
    atomic_write_text(out_dir / "results.csv", buf.getvalue())
    metric = primary_metric(records)
    name = "Accuracy" if metric == "accuracy" else metric
    md = (header + "\n\n" if header else "") + f"{name}: mean ± std over seeds (worst seed); "
    md += "std is the sample std (ddof = 1).\n\n"
    md += markdown_table(summarise(records, metric))
    atomic_write_text(out_dir / "results.md", md)


# ----------------------------------------------------------------------------- reading back

_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_component(name: str) -> str:
    """`name` made safe as one path component (no separators, no '..'): for names from results."""
    safe = _SAFE.sub("_", str(name)).strip("_")
    return safe or "_"


def read_records(directory: str | Path) -> list[dict]:
    """The records of a results folder: results.json, or else results.csv (as written here)."""
    directory = Path(directory)
    path = directory / "results.json"
    if path.exists():
        try:
            records = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise PMRFusionError(f"cannot read {path}: {e}") from None
        if not isinstance(records, list):
            raise PMRFusionError(f"{path} is not a list of records")
        return records
    path = directory / "results.csv"
    if not path.exists():
        raise PMRFusionError(
            f"{directory}/results.json (or .csv) not found: run `pmrfusion bench` or `pmrfusion suite` "
            f"with --out {directory}"
        )
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        return [Record.from_dict(r).to_dict() for r in rows]
    except (OSError, ValueError, KeyError, PMRFusionError) as e:
        raise PMRFusionError(f"cannot read {path}: {e}") from None


# ----------------------------------------------------------------------------- a suite's folder

SUITE_FILE = "suite.json"
CELLS = "cells"


def cell_filename(dataset: str, method: str, seed: int) -> str:
    safe = [re.sub(r"[^A-Za-z0-9._-]+", "_", s) for s in (dataset, method)]
    return f"{safe[0]}__{safe[1]}__seed{seed}.json"


def cell_path(out: str | Path, filename: str) -> Path:
    return Path(out) / CELLS / filename


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def store_cell(out: str | Path, filename: str, payload: dict) -> None:
    """Write one finished cell durably, with the SHA-256 of its payload."""
    body = {**payload, "sha256": _checksum(payload)}
    atomic_write_text(cell_path(out, filename), json.dumps(body) + "\n")


def read_cell(path: Path) -> dict | None:
    """A cell's payload, or None when the file is missing, truncated or fails its checksum."""
    try:
        body = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    digest = body.pop("sha256", None)
    if digest is not None and digest != _checksum(body):
        return None
    if not {"dataset", "method", "seed", "status"} <= set(body):
        return None
    return body


def cell_done(out: str | Path, filename: str) -> bool:
    return read_cell(cell_path(out, filename)) is not None


def read_cells(out: str | Path) -> list[dict]:
    """Every finished (readable, checksum-valid) cell's payload, ordered by (dataset, method, seed)."""
    folder = Path(out) / CELLS
    payloads = [c for p in (sorted(folder.glob("*.json")) if folder.is_dir() else []) if (c := read_cell(p))]
    payloads.sort(key=lambda c: (c["dataset"], c["method"], int(c["seed"])))
    return payloads


def skipped_notes(out: str | Path) -> list[str]:
    """'dataset/method/seed k: note' for every finished cell that was skipped."""
    return [
        f"{c['dataset']}/{c['method']}/seed {c['seed']}: {c.get('note', '')}"
        for c in read_cells(out)
        if c.get("status") != "ok"
    ]


def read_suite_settings(out: str | Path) -> dict | None:
    path = Path(out) / SUITE_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get("settings")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


@contextlib.contextmanager
def suite_lock(out: str | Path) -> Iterator[None]:
    """An exclusive fcntl lock on OUT/.suite.lock (blocks while another run holds it)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".suite.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def claim_suite(out: str | Path, settings: dict, cell_names: Sequence[str]) -> None:
    """Check OUT/suite.json against `settings` and record the cells, under the suite lock.

    A folder holding a run with other settings is refused, so two runs with different settings
    cannot both write into one folder.
    """
    out = Path(out)
    path = out / SUITE_FILE
    with suite_lock(out):
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise PMRFusionError(f"{path} is unreadable ({e}); use a new --out folder") from None
            if old.get("settings") != settings:
                diff = sorted(k for k in settings if old.get("settings", {}).get(k) != settings[k])
                raise PMRFusionError(
                    f"{out} holds a suite run with other settings ({', '.join(diff)}); "
                    "use a new --out folder or the same options"
                )
            known = old.get("cells", [])
        else:
            known = []
        names = list(dict.fromkeys(known + list(cell_names)))
        atomic_write_text(path, json.dumps({"settings": settings, "cells": names}, indent=1) + "\n")
