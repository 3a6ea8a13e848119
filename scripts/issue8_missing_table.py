"""Issue 8 table: mean leave-one-out and keep-one accuracy under both missing protocols, from suite cells.

    python scripts/issue8_missing_table.py after=runs/i8-after before=runs/i8-before \
        --out results/pmr_fidelity/missing_handwritten.csv
"""

from __future__ import annotations

import argparse
import csv

from pmrfusion.bench.records import (
    format_mean_std_worst,
    is_keep_one,
    is_leave_one_out,
    per_seed_means,
    read_cells,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", help="label=suite folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--datasets", default=None, help="comma-separated; default: every dataset in the cells")
    args = ap.parse_args()
    rows = []
    for item in args.runs:
        label, folder = item.split("=", 1)
        cells = read_cells(folder)
        for c in cells:
            if c.get("status") != "ok":  # e.g. a diverged run: reported, not averaged
                what = f"{c['dataset']} {c['method']} seed {c['seed']}"
                print(f"# {label}: {what} {c['status']}: {c.get('note')}")
        records = [r for c in cells if c.get("status") == "ok" for r in c["records"]]
        datasets = sorted({r["dataset"] for r in records})
        if args.datasets:
            datasets = [d for d in datasets if d in args.datasets.split(",")]
        for ds in datasets:
            recs = [r for r in records if r["dataset"] == ds]
            num_mod = max(len(r["present"]) for r in recs)
            for method in dict.fromkeys(r["method"] for r in recs):
                seeds = len({r["seed"] for r in recs if r["method"] == method})
                row = {"run": label, "dataset": ds, "method": method, "seeds": seeds}
                row["clean"] = format_mean_std_worst(
                    per_seed_means(recs, method, lambda r: r["protocol"] == "clean"), 100, 2
                )
                for proto in ("missing", "missing_mean"):
                    def loo_cond(r, p=proto, k=num_mod):
                        return is_leave_one_out(r, k, p)

                    loo = per_seed_means(recs, method, loo_cond)
                    keep = per_seed_means(recs, method, lambda r, p=proto: is_keep_one(r, p))
                    row[f"{proto} leave-one-out"] = format_mean_std_worst(loo, 100, 2)
                    row[f"{proto} keep-one"] = format_mean_std_worst(keep, 100, 2)
                rows.append(row)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for r in rows:
        print("| " + " | ".join(str(v) for v in r.values()) + " |")


if __name__ == "__main__":
    main()
