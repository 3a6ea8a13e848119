"""Mean ± sample std (ddof = 1) over seeds of evidence.csv, one line per (dataset, method, options, group)."""

import collections
import csv
import statistics
import sys

groups = collections.defaultdict(list)
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f):
        groups[(r["dataset"], r["method"], r["options"], r["group"])].append(100 * float(r["accuracy"]))
print("| dataset | method | options | condition group | accuracy % | seeds |")
print("|---|---|---|---|---|---|")
for (ds, m, opt, g), v in groups.items():
    sd = f" ± {statistics.stdev(v):.2f}" if len(v) > 1 else ""
    print(f"| {ds} | {m} | {opt} | {g} | {statistics.mean(v):.2f}{sd} | {len(v)} |")
