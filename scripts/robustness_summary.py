"""Per-method aggregates of a bench results.json: clean, mean leave-one-out, mean keep-one,
Gaussian eps=10 (mean ± std over seeds, worst seed).

Usage: python scripts/robustness_summary.py DIR [DIR ...]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def per_seed(records, method, predicate):
    by_seed = defaultdict(list)
    for r in records:
        if r["method"] == method and r["metric"] == "accuracy" and predicate(r):
            by_seed[r["seed"]].append(r["value"])
    return np.array([np.mean(v) for _, v in sorted(by_seed.items())])


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
                per_seed(records, method, lambda r: r["condition"] == "clean"),
                per_seed(
                    records,
                    method,
                    lambda r, k=num_mods: r["protocol"] == "missing" and len(r["present"]) == k - 1,
                ),
                per_seed(records, method, lambda r: r["protocol"] == "missing" and len(r["present"]) == 1),
                per_seed(records, method, lambda r: r["condition"] == "gaussian:10"),
            ]
            print(f"| {records[0]['dataset']} | {method} | " + " | ".join(fmt(c) for c in cols) + " |")


if __name__ == "__main__":
    main()
