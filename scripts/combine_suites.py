"""Combine suite outputs into one folder for `pmrfusion report`.

Sources are earlier suite folders (their results.json or results.csv) and suite folders with per-cell files
(DIR/cells/*.json). A (dataset, method) group is kept only when every requested seed finished;
a (dataset, method, seed) cell present in several sources is taken from the first, and the
others are checked to hold the same values (determinism across runs).

Usage: python scripts/combine_suites.py OUT SRC [SRC ...] [--seeds 5]
"""

from __future__ import annotations

import argparse
import shutil
from collections import defaultdict
from pathlib import Path

from pmrfusion.bench.records import read_cells, read_records, write_results


def records_of(src: Path) -> list[dict]:
    if (src / "cells").is_dir():
        return [r for c in read_cells(src) if c.get("status") == "ok" for r in c["records"]]
    return read_records(src)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("sources", type=Path, nargs="+")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    cells: dict[tuple, list[dict]] = {}
    checked = mismatched = 0
    for src in args.sources:
        by_cell: dict[tuple, list[dict]] = defaultdict(list)
        for r in records_of(src):
            by_cell[(r["dataset"], r["method"], r["seed"])].append(r)
        for key, recs in by_cell.items():
            if key not in cells:
                cells[key] = recs
                continue
            checked += 1
            old = {(r["condition"], r["metric"]): r["value"] for r in cells[key]}
            new = {(r["condition"], r["metric"]): r["value"] for r in recs}
            if old != new:
                mismatched += 1
                print(f"differs between sources: {key}")
    seeds = defaultdict(set)
    for ds, method, seed in cells:
        seeds[(ds, method)].add(seed)
    wanted = set(range(args.seeds))
    complete = {g for g, s in seeds.items() if wanted <= s}
    dropped = sorted(g for g in seeds if g not in complete)
    records = [
        r for key in sorted(cells) if (key[0], key[1]) in complete and key[2] in wanted for r in cells[key]
    ]
    write_results(args.out, records, "# combined suite results")
    for src in args.sources:
        if (src / "suite.json").exists():
            shutil.copy(src / "suite.json", args.out / "suite.json")
            break
    print(f"{len(complete)} complete (dataset, method) groups, {len(records)} records -> {args.out}")
    print(f"cells found in more than one source: {checked}, with different values: {mismatched}")
    if dropped:
        print("incomplete groups left out: " + ", ".join(f"{d}/{m}" for d, m in dropped))


if __name__ == "__main__":
    main()
