"""Per-method aggregates of a bench results.json: clean, mean leave-one-out, mean keep-one,
Gaussian eps=10 (mean ± std over seeds, worst seed).

Usage: python scripts/robustness_summary.py DIR [DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from pmrfusion.bench.records import is_keep_one, is_leave_one_out, per_seed_means


def fmt(v: np.ndarray) -> str:
    return f"{v.mean():.4f} ± {v.std():.4f} ({v.min():.4f})" if len(v) else "n/a"


def main() -> None:
    print("| dataset | method | clean | mean leave-one-out | mean keep-one | gaussian eps=10 |")
    print("|---|---|---|---|---|---|")
    for d in sys.argv[1:]:
        records = json.loads((Path(d) / "results.json").read_text())
        num_mods = max(len(r["present"]) for r in records)
        for method in dict.fromkeys(r["method"] for r in records):
            cols = [
                per_seed_means(records, method, lambda r: r["condition"] == "clean"),
                per_seed_means(records, method, lambda r, k=num_mods: is_leave_one_out(r, k)),
                per_seed_means(records, method, is_keep_one),
                per_seed_means(records, method, lambda r: r["condition"] == "gaussian:10"),
            ]
            print(f"| {records[0]['dataset']} | {method} | " + " | ".join(fmt(c) for c in cols) + " |")


if __name__ == "__main__":
    main()
