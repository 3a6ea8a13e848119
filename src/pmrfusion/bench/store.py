"""Results records: atomic JSON/CSV/Markdown writing and mean ± std / worst-seed summaries."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pmrfusion.eval.regression_metrics import LOWER_IS_BETTER, primary_metric

RECORD_KEYS = ("dataset", "method", "protocol", "condition", "present", "seed", "metric", "value")


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def summarize(records: Iterable[dict], metric: str = "accuracy") -> list[SummaryRow]:
    """Mean, population std and worst seed per (dataset, method, protocol, condition)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in records:
        if r["metric"] == metric:
            groups[(r["dataset"], r["method"], r["protocol"], r["condition"])].append(float(r["value"]))
    rows = []
    for (ds, meth, proto, cond), vals in groups.items():
        v = np.asarray(vals)
        worst = v.max() if metric in LOWER_IS_BETTER else v.min()
        rows.append(SummaryRow(ds, meth, proto, cond, metric, v.mean(), v.std(), worst, len(v)))
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


def is_leave_one_out(r: dict, num_modalities: int) -> bool:
    return r["protocol"] == "missing" and len(r["present"]) == num_modalities - 1


def is_keep_one(r: dict) -> bool:
    return r["protocol"] == "missing" and len(r["present"]) == 1


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
            vals.append(f"{r.mean:.4f} ± {r.std:.4f} ({r.worst:.4f})" if r else "")
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
    md = (header + "\n\n" if header else "") + f"{metric}: mean ± std over seeds (worst seed).\n\n"
    md += markdown_table(summarize(records, metric))
    atomic_write_text(out_dir / "results.md", md)
