"""The AV-MNIST accuracy table from `pmrfusion bench` outputs (one folder per regime).

    python scripts/avmnist_table.py runs/avmnist-end-to-end runs/avmnist-frozen --out results/avmnist

Writes accuracy.csv (regime, method, condition, mean, std, worst seed, seeds) and prints a
markdown table: clean, keep-image, keep-audio, Gaussian eps 5 and 10.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from pmrfusion.bench.records import sample_std

CONDITIONS = {"clean": "clean", "missing:audio": "keep-image", "missing:image": "keep-audio",
              "gaussian:5": "gaussian 5", "gaussian:10": "gaussian 10"}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("results/avmnist"))
    args = ap.parse_args()
    cells: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    methods: list[str] = []
    regimes: list[str] = []
    for run in args.runs:
        for r in json.loads((run / "results.json").read_text()):
            if r["metric"] != "accuracy" or r["condition"] not in CONDITIONS:
                continue
            regime = r.get("regime", "end-to-end")
            cells[(regime, r["method"], r["condition"])].append(r["value"])
            if r["method"] not in methods:
                methods.append(r["method"])
            if regime not in regimes:
                regimes.append(regime)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for (regime, method, cond), v in cells.items():
        a = np.array(v)
        rows.append({"regime": regime, "method": method, "condition": CONDITIONS[cond],
                     "mean": round(a.mean(), 4), "std": round(sample_std(a), 4), "worst": round(a.min(), 4),
                     "seeds": len(a)})  # fmt: skip
    with (args.out / "accuracy.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for regime in regimes:
        print(f"\n**{regime}** (accuracy, mean ± std over seeds (worst seed))\n")
        print("| method | " + " | ".join(CONDITIONS.values()) + " |")
        print("|---" * (len(CONDITIONS) + 1) + "|")
        for m in methods:
            vals = []
            for c in CONDITIONS:
                a = np.array(cells.get((regime, m, c), [np.nan]))
                vals.append(f"{a.mean():.4f} ± {sample_std(a):.4f} ({a.min():.4f})")
            print(f"| {m} | " + " | ".join(vals) + " |")


if __name__ == "__main__":
    main()
