"""Issue 8 table: mean leave-one-out and keep-one accuracy under both missing protocols, from suite cells.

    python scripts/issue8_missing_table.py after=runs/i8-after before=runs/i8-before \
        --out results/pmr_fidelity/missing_all.csv [--wide]
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
    ap.add_argument("--wide", action="store_true", help="print one table per protocol, datasets as columns")
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
    if args.wide:
        print_wide(rows)
        return
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for r in rows:
        print("| " + " | ".join(str(v) for v in r.values()) + " |")


# back-end first, then its PMR variants; then the mask-aware and comparison methods
ORDER = [
    "concat", "late", "sg-concat", "rg-concat", "rg-srht", "cmmp", "rg-cmmp", "umoe", "rg-umoe",
    "qmf", "pdf", "iid-l", "iid-q", "iid-p", "tmc", "ecml", "misa", "drfuse",
]  # fmt: skip


def _mean_std(cell: str) -> str:
    """'m ± s (worst)' -> 'm ± s'."""
    return cell.split(" (")[0]


def print_wide(rows: list[dict]) -> None:
    """Per protocol: rows = method (run), columns = dataset x {leave-one-out, keep-one}; a dataset with
    two modalities gets one column (leave-one-out = keep-one there)."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    two_views = {
        d: all(r["missing leave-one-out"] == r["missing keep-one"] for r in rows if r["dataset"] == d)
        for d in datasets
    }
    order = {m: i for i, m in enumerate(ORDER)}
    methods = sorted(
        dict.fromkeys((r["method"], r["run"]) for r in rows),
        key=lambda k: (order.get(k[0], len(order)), k[0]),
    )
    by_key = {(r["method"], r["run"], r["dataset"]): r for r in rows}
    for proto in ("clean", "missing", "missing_mean"):
        cols = []
        for d in datasets:
            if proto == "clean":
                cols.append((d, "clean", d))
            elif two_views[d]:
                cols.append((d, f"{proto} leave-one-out", f"{d} LOO = K1"))
            else:
                cols.append((d, f"{proto} leave-one-out", f"{d} LOO"))
                cols.append((d, f"{proto} keep-one", f"{d} K1"))
        print(f"\n{proto}:\n")
        print("| method | run | " + " | ".join(c[2] for c in cols) + " |")
        print("|---|---|" + "---|" * len(cols))
        for method, run in methods:
            cells = [by_key.get((method, run, d), {}).get(field, "") for d, field, _ in cols]
            label = run if method.startswith(("sg-", "rg-")) else ""  # the PMR change only touches these
            print(f"| {method} | {label} | " + " | ".join(_mean_std(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
