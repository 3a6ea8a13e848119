"""Turn `pmrfusion bench` outputs (results.json) into the committed Table-10 analogue.

Usage: PYTHONPATH=src python scripts/mosi_table.py NAME=RUN_DIR [NAME=RUN_DIR ...]
writes results/mosi/table10.csv (long: variant, method, subset, metric, mean, std, seeds) and prints
markdown tables (Acc2 %, F1 %, MAE) per variant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pmrfusion.eval.subset_table import subset_table_csv, subset_table_markdown

METRICS = ("acc2", "f1", "mae", "acc2_nonzero", "corr", "acc7")


def main(pairs: list[str]) -> None:
    parts = []
    for i, pair in enumerate(pairs):
        name, run_dir = pair.split("=", 1)
        records = json.loads((Path(run_dir) / "results.json").read_text())
        body = subset_table_csv(records, METRICS, variant=name)
        parts.append(body if i == 0 else body.split("\n", 1)[1])
        for metric, scale, title in (("acc2", 100, "Acc2 (%)"), ("f1", 100, "F1 (%)"), ("mae", 1.0, "MAE")):
            print(f"\n### {name}: {title}, mean ± std over seeds\n")
            print(subset_table_markdown(records, metric, scale))
    out = Path(__file__).resolve().parents[1] / "results" / "mosi" / "table10.csv"
    out.write_text("".join(parts))
    print(f"written {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
