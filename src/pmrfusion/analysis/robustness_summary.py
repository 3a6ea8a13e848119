"""Per-method aggregates of bench results folders: clean, mean leave-one-out, mean keep-one,
Gaussian eps=10 (mean ± std over seeds, worst seed). `pmrfusion robustness-summary DIR [DIR ...]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pmrfusion.bench.records import (
    format_mean_std_worst,
    is_keep_one,
    is_leave_one_out,
    per_seed_means,
    read_records,
)


def fmt(v: np.ndarray) -> str:
    return format_mean_std_worst(v, empty="n/a")


def robustness_summary(directories: Sequence[str | Path]) -> str:
    """The markdown table, one row per (folder, method)."""
    lines = [
        "| dataset | method | clean | mean leave-one-out | mean keep-one | gaussian eps=10 |",
        "|---|---|---|---|---|---|",
    ]
    for d in directories:
        records = read_records(d)
        num_mods = max(len(r["present"]) for r in records)
        for method in dict.fromkeys(r["method"] for r in records):
            cols = [
                per_seed_means(records, method, lambda r: r["condition"] == "clean"),
                per_seed_means(records, method, lambda r, k=num_mods: is_leave_one_out(r, k)),
                per_seed_means(records, method, is_keep_one),
                per_seed_means(records, method, lambda r: r["condition"] == "gaussian:10"),
            ]
            lines.append(f"| {records[0]['dataset']} | {method} | " + " | ".join(fmt(c) for c in cols) + " |")
    return "\n".join(lines)
