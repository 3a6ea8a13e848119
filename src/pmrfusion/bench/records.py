"""Result records: the typed `Record`, durable writing, the suite's cells/ layout, summaries.

This module is the only place that knows
- a record's fields (`Record`, `RECORD_KEYS`) and how condition names are parsed (`parse_condition`);
- the one "mean ± std (worst)" text (`format_mean_std_worst`);
- the files of a results folder: results.json/.csv/.md (`write_results`, `read_records`) and a
  suite's suite.json + cells/<dataset>__<method>__seed<k>.json (`cell_path`, `store_cell`,
  `read_cell`, `read_cells`, `claim_suite`).

Writes are atomic and durable (`pmrfusion.paths.atomic_write_text`: a temporary file in the same
folder, fsynced, renamed over the target, then the folder fsynced; files get the user's umask).
Each cell file carries a SHA-256 of its payload and of the suite settings it was made with; a cell
is accepted only when both checksums match, its fields are well formed and its dataset, method and
seed are the ones its file name says (`check_cell`); otherwise it is recomputed.

Values that are not finite (a Pearson r of constant targets) are written as JSON `null` in
results.json and the cells (JSON has no NaN) and read back as NaN; results.csv writes `nan`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import hashlib
import io
import json
import math
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
from pmrfusion.paths import atomic_write_text, check_output_file
from pmrfusion.train.trainer import recorded_train_settings

RECORD_KEYS = ("dataset", "method", "protocol", "condition", "present", "seed", "metric", "value")
NAME_KEYS = ("dataset", "method", "protocol", "condition", "metric")
NULL_NOTE = (
    "some values are undefined (e.g. a Pearson r of constant targets): `null` in results.json, `nan` in "
    "results.csv"
)


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


def record_problem(r: object) -> str:
    """Why `r` is not a well-formed record ('' when it is): the fields of `Record`, with names
    non-empty strings, `present` a list of names, `seed` an integer >= 0, `value` a number or null."""
    if not isinstance(r, dict):
        return f"is {type(r).__name__}, not an object"
    missing = [k for k in RECORD_KEYS if k not in r]
    if missing:
        return f"lacks {', '.join(missing)}"
    for k in NAME_KEYS:
        if not isinstance(r[k], str) or not r[k]:
            return f"has {k} {r[k]!r:.60}, not a non-empty string"
    present = r["present"]
    if not isinstance(present, list) or not all(isinstance(p, str) and p for p in present):
        return f"has present {present!r:.60}, not a list of modality names"
    seed = r["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        return f"has seed {seed!r:.60}, not an integer >= 0"
    value = r["value"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"has value {value!r:.60}, not a number or null"
    return ""


def check_records(records: object, source: str | Path) -> list[dict]:
    """`records` (parsed JSON) if it is a list of well-formed records, null values read as NaN;
    else a `PMRFusionError` naming `source` and the first bad record."""
    if not isinstance(records, list):
        raise PMRFusionError(f"{source} is not a list of records (it holds {type(records).__name__})")
    out = []
    for i, r in enumerate(records):
        why = record_problem(r)
        if why:
            raise PMRFusionError(f"{source}: record {i} {why}")
        out.append(r if r["value"] is not None else {**r, "value": math.nan})
    return out


def _json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float as None (JSON has no NaN / Infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def to_json(obj: Any, **kwargs: Any) -> str:
    """Standard JSON of `obj`: non-finite floats as null."""
    return json.dumps(_json_safe(obj), allow_nan=False, **kwargs)


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
    `lower_is_better`, e.g. MAE) of `scale * values`; one seed has no spread: 'value (n = 1)'."""
    v = np.asarray(values, dtype=float)
    if not v.size:
        return empty
    if v.size == 1:
        return single_seed(scale * v[0], digits)
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
            value = math.nan if r["value"] is None else float(r["value"])
            groups[(r["dataset"], r["method"], r["protocol"], r["condition"])].append(value)
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


def single_seed(value: float, digits: int = 4) -> str:
    """The text of a value measured on one seed: no spread, and it says so."""
    return f"{value:.{digits}f} (n = 1)"


def _fmt_row(r: SummaryRow) -> str:
    return single_seed(r.mean) if r.seeds == 1 else format_stats(r.mean, r.std, r.worst)


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


def records_csv(records: list[dict]) -> tuple[str, bool]:
    """(results.csv's text of `records`, whether some value is undefined: written `nan`)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RECORD_KEYS, extrasaction="ignore")
    w.writeheader()
    undefined = False
    for r in records:
        value = r["value"]
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            undefined = True
            value = math.nan if value is None else value
        w.writerow({**r, "present": "+".join(r["present"]), "value": value})
    return buf.getvalue(), undefined


RECORD_FILE_SUFFIXES = (".json", ".csv")


def check_records_file(path: str | Path, overwrite: bool = False, what: str = "--out") -> Path:
    """`path` can take a records file (before any work): .json or .csv, writable, not an existing
    file unless `overwrite`."""
    path = Path(path)
    if path.suffix.lower() not in RECORD_FILE_SUFFIXES:
        raise PMRFusionError(f"{what}: {path} must end in .json or .csv")
    check_output_file(path, what)
    if path.exists() and not overwrite:
        raise PMRFusionError(f"{what}: {path} already exists (pass --overwrite to replace it)")
    return path


def write_records_file(path: str | Path, records: list[dict]) -> None:
    """`records` as one file, atomically: .json as results.json, .csv as results.csv."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        atomic_write_text(path, records_csv(records)[0])
    else:
        atomic_write_text(path, to_json(records, indent=1) + "\n")


def write_results(out_dir: Path, records: list[dict], header: str = "") -> None:
    """results.json (list of records), results.csv and results.md, each written atomically (a
    failed write: `WriteError` naming the file). Non-finite values: null in JSON, `nan` in CSV."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "results.json", to_json(records, indent=1) + "\n")
    text, undefined = records_csv(records)
    atomic_write_text(out_dir / "results.csv", text)
    metric = primary_metric(records)
    name = "Accuracy" if metric == "accuracy" else metric
    md = (header + "\n\n" if header else "") + f"{name}: mean ± std over seeds (worst seed); "
    md += "std is the sample std (ddof = 1).\n\n"
    if undefined:
        md += f"Note: {NULL_NOTE}.\n\n"
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
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise PMRFusionError(f"cannot read {path}: {e}") from None
        return check_records(records, path)
    path = directory / "results.csv"
    if not path.exists():
        raise PMRFusionError(
            f"{directory}/results.json (or .csv) not found: run `pmrfusion bench` or `pmrfusion suite` "
            f"with --out {directory}"
        )
    records = []
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                if None in row or None in row.values():
                    raise ValueError(f"line {reader.line_num} does not have the {len(RECORD_KEYS)} columns")
                r = Record.from_dict(row).to_dict()
                why = record_problem(r)
                if why:
                    raise ValueError(f"line {reader.line_num}: the record {why}")
                records.append(r)
    except (OSError, ValueError, KeyError, TypeError, csv.Error, PMRFusionError) as e:
        raise PMRFusionError(f"cannot read {path}: {e}") from None
    return records


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


def settings_digest(settings: dict) -> str:
    """The SHA-256 of a suite's settings, stored in each of its cells."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def store_cell(out: str | Path, filename: str, payload: dict, settings_sha256: str) -> None:
    """Write one finished cell durably, with the digest of the settings it was made with and the
    SHA-256 of the whole (non-finite values as null). A failed write raises `WriteError`."""
    body = json.loads(to_json({**payload, "settings_sha256": settings_sha256}))
    atomic_write_text(cell_path(out, filename), to_json({**body, "sha256": _checksum(body)}) + "\n")


def _cell_problem(body: dict) -> str:
    """Why a checksum-valid cell body is malformed ('' when it is not)."""
    for k in ("dataset", "method"):
        if not isinstance(body.get(k), str) or not body[k]:
            return f"{k} is not a name ({body.get(k)!r:.60})"
    seed = body.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        return f"seed is not an integer >= 0 ({seed!r:.60})"
    status = body.get("status")
    if status == "skipped":
        return "" if isinstance(body.get("note", ""), str) else "its note is not text"
    if status != "ok":
        return f"status is {status!r:.60}, not 'ok' or 'skipped'"
    records = body.get("records")
    if not isinstance(records, list):
        return "records is not a list"
    for i, r in enumerate(records):
        why = record_problem(r)
        if why:
            return f"record {i} {why}"
        if r["method"] != body["method"] or r["seed"] != seed:
            return f"record {i} is of {r['method']}/seed {r['seed']}"
    return ""


def check_cell(path: Path, settings_sha256: str | None = None) -> tuple[dict | None, str]:
    """(the payload, '') of an acceptable cell file, else (None, why not). Acceptable: whole JSON
    object, SHA-256 present and matching, fields well formed, dataset/method/seed those of the file
    name, and (when `settings_sha256` is given) made with those settings. Null values read as NaN."""
    if not path.exists():
        return None, "missing"
    if not path.is_file():
        return None, "not a file"
    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        return None, f"unreadable ({e})"
    except json.JSONDecodeError:
        return None, "truncated or not JSON"
    if not isinstance(body, dict):
        return None, "not a JSON object"
    digest = body.pop("sha256", None)
    if digest is None:
        return None, "no checksum"
    if digest != _checksum(body):
        return None, "checksum mismatch (truncated or edited)"
    why = _cell_problem(body)
    if why:
        return None, why
    name = cell_filename(body["dataset"], body["method"], body["seed"])
    if name != path.name:
        return None, f"holds {body['dataset']}/{body['method']}/seed {body['seed']} (file {name})"
    if settings_sha256 is not None and body.get("settings_sha256") != settings_sha256:
        known = "other" if body.get("settings_sha256") else "unrecorded"
        return None, f"made with {known} settings"
    if body["status"] == "ok":
        body["records"] = [r if r["value"] is not None else {**r, "value": math.nan} for r in body["records"]]
    return body, ""


def read_cell(path: Path, settings_sha256: str | None = None) -> dict | None:
    """A cell's payload, or None when `check_cell` does not accept it."""
    return check_cell(path, settings_sha256)[0]


def cell_done(out: str | Path, filename: str, settings_sha256: str | None = None) -> bool:
    return read_cell(cell_path(out, filename), settings_sha256) is not None


def scan_cells(out: str | Path, settings_sha256: str | None = None) -> tuple[list[dict], list[str]]:
    """(every acceptable cell's payload ordered by (dataset, method, seed), 'cells/NAME: why' for
    every other .json file of OUT/cells)."""
    folder = Path(out) / CELLS
    payloads, ignored = [], []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        cell, why = check_cell(p, settings_sha256)
        if cell is None:
            ignored.append(f"{CELLS}/{p.name}: {why}")
        else:
            payloads.append(cell)
    payloads.sort(key=lambda c: (c["dataset"], c["method"], c["seed"]))
    return payloads, ignored


def read_cells(out: str | Path, settings_sha256: str | None = None) -> list[dict]:
    """Every acceptable cell's payload (`check_cell`), ordered by (dataset, method, seed)."""
    return scan_cells(out, settings_sha256)[0]


def skipped_notes(out: str | Path) -> list[str]:
    """'dataset/method/seed k: note' for every finished cell that was skipped."""
    return [
        f"{c['dataset']}/{c['method']}/seed {c['seed']}: {c.get('note', '')}"
        for c in read_cells(out)
        if c.get("status") != "ok"
    ]


def _suite_file(path: Path) -> tuple[dict, str]:
    """(suite.json's content, '') or ({}, why it is not a suite file)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        return {}, f"unreadable ({e})"
    if not isinstance(old, dict):
        return {}, f"a JSON {type(old).__name__}, not an object"
    if not isinstance(old.get("settings"), dict):
        return {}, "its settings are not an object"
    cells = old.get("cells", [])
    if not isinstance(cells, list) or not all(isinstance(c, str) for c in cells):
        return {}, "its cells are not a list of file names"
    return old, ""


def read_suite_settings(out: str | Path) -> dict | None:
    """The settings of OUT/suite.json, or None when there is none or it is damaged."""
    path = Path(out) / SUITE_FILE
    if not path.is_file():
        return None
    return _suite_file(path)[0].get("settings")


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
    cannot both write into one folder; so is a damaged suite.json (one line naming it).
    """
    out = Path(out)
    path = out / SUITE_FILE
    with suite_lock(out):
        if path.exists():
            old, why = _suite_file(path)
            if why:
                raise PMRFusionError(
                    f"{path} is damaged: {why}; use a new --out folder, or delete {path} to take the "
                    "folder over (every cell file is then checked against the new settings)"
                )
            if old["settings"] != settings:
                diff = sorted(k for k in settings if old["settings"].get(k) != settings[k])
                raise PMRFusionError(
                    f"{out} holds a suite run with other settings ({', '.join(diff)}); "
                    "use a new --out folder or the same options"
                )
            known = old.get("cells", [])
        else:
            known = []
        names = list(dict.fromkeys(known + list(cell_names)))
        atomic_write_text(path, json.dumps({"settings": settings, "cells": names}, indent=1) + "\n")


def cell_train_settings(tc) -> dict:
    """The training config as a stored cell's settings record it: every field but `quiet` and `seed`
    (not results-bearing) and those of `RECORDED_WHEN_SET` at their default, the group optimizers by
    their repr."""
    settings = dataclasses.asdict(tc)
    settings.pop("quiet", None)
    settings.pop("seed", None)
    settings["group_optimizers"] = repr(tc.group_optimizers)
    return recorded_train_settings(settings)
