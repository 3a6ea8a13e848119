"""`pmrfusion report DIR`: DIR/report.md and PNG figures from DIR/results.json.

Every number in the report is computed from DIR/results.json, except the published
reference numbers (`PUBLISHED`), which are copied from shared/data/REFERENCE_RESULTS.md and
printed with their source, split and protocol.

Classification datasets (accuracy records) get accuracy tables and figures; regression datasets
(records with `mae`, e.g. MOSI) get MAE / Acc2 / F1 / Pearson r per condition instead
(`regression_lines`). A folder may hold both.

One module per job:
- `results`: the records read back and indexed (`Results`, `load_records`), the number format;
- `tables`: the accuracy tables (clean, missing, conflict, robustness);
- `figures`: the PNG figures;
- `published`: the published reference numbers and their comparison section;
- `regression`: the regression datasets' tables and section;
- `page`: report.md from all of the above (`write_report`);
- `benchmarks`: a BENCHMARKS page, the report with other pages appended (`benchmarks_page`).
"""

from __future__ import annotations

from pmrfusion.bench.report.benchmarks import benchmarks_page, demote_headings, relink
from pmrfusion.bench.report.page import classification_lines, write_report
from pmrfusion.bench.report.published import PUBLISHED, published_section
from pmrfusion.bench.report.regression import RegressionResults, regression_datasets, regression_lines
from pmrfusion.bench.report.results import Results, load_records
from pmrfusion.bench.report.tables import robustness

__all__ = [
    "PUBLISHED",
    "RegressionResults",
    "Results",
    "benchmarks_page",
    "classification_lines",
    "demote_headings",
    "load_records",
    "published_section",
    "regression_datasets",
    "regression_lines",
    "relink",
    "robustness",
    "write_report",
]
