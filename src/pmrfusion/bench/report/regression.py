"""Regression datasets (records with `mae`, e.g. MOSI): MAE / Acc2 / F1 / Pearson r per condition."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pmrfusion.bench.records import format_mean_std_worst
from pmrfusion.bench.report.figures import figure_name, noise_figure
from pmrfusion.bench.report.results import NOISE_PROTOCOLS, Results, noise_level
from pmrfusion.bench.report.tables import md_table
from pmrfusion.eval.regression_metrics import LOWER_IS_BETTER

# metric -> (column title, scale, digits): accuracies and F1 in %, MAE and Pearson r as they are
REGRESSION_COLUMNS = {
    "mae": ("MAE", 1.0, 3),
    "corr": ("corr", 1.0, 3),
    "acc2": ("Acc2 (%)", 100.0, 2),
    "f1": ("F1 (%)", 100.0, 2),
    "acc2_nonzero": ("Acc2 non-zero (%)", 100.0, 2),
    "f1_nonzero": ("F1 non-zero (%)", 100.0, 2),
    "acc7": ("Acc7 (%)", 100.0, 2),
}
CONDITION_METRICS = ("mae", "acc2", "f1", "corr")  # per condition: the four MOSI papers lead with


def regression_datasets(records: Iterable[dict]) -> list[str]:
    """Datasets whose records carry regression metrics (`mae`) and no accuracy, in record order."""
    records = list(records)
    classified = {r["dataset"] for r in records if r["metric"] == "accuracy"}
    found = (r["dataset"] for r in records if r["metric"] == "mae" and r["dataset"] not in classified)
    return list(dict.fromkeys(found))


class RegressionResults:
    """One `Results` per regression metric, over the regression datasets' records only."""

    def __init__(self, records: Iterable[dict], datasets: list[str]):
        keep = [r for r in records if r["dataset"] in set(datasets)]
        self.datasets = datasets
        self.by_metric = {m: Results(keep, m) for m in REGRESSION_COLUMNS}
        self.metrics = [m for m, res in self.by_metric.items() if res.datasets]

    @property
    def mae(self) -> Results:
        return self.by_metric["mae"]

    def cell(self, ds: str, method: str, condition: str, metric: str) -> str:
        _, scale, digits = REGRESSION_COLUMNS[metric]
        values = self.by_metric[metric].values(ds, method, condition)
        return format_mean_std_worst(values, scale, digits, "–", metric in LOWER_IS_BETTER)

    def protocols(self, ds: str) -> list[str]:
        """The non-clean protocols of `ds`, in record order."""
        res = self.mae
        found = (res.protocol_of[c] for (d, _, c) in res.acc if d == ds)
        return [p for p in dict.fromkeys(found) if p != "clean"]


def regression_clean_table(reg: RegressionResults, ds: str) -> str:
    metrics = reg.metrics
    rows = [[m, *[reg.cell(ds, m, "clean", k) for k in metrics]] for m in reg.mae.methods_of(ds)]
    return md_table(["method", *[REGRESSION_COLUMNS[k][0] for k in metrics]], rows)


def regression_condition_table(reg: RegressionResults, ds: str, protocol: str) -> str:
    """Rows: the clean test set, then each condition of `protocol`, one row per method; columns:
    MAE, Acc2, F1, corr."""
    metrics = [k for k in CONDITION_METRICS if k in reg.metrics]
    conds = ["clean", *reg.mae.conditions(ds, protocol)]
    if protocol in NOISE_PROTOCOLS:
        conds = ["clean", *sorted(reg.mae.conditions(ds, protocol), key=noise_level)]
    rows = [
        [c, m, *[reg.cell(ds, m, c, k) for k in metrics]] for c in conds for m in reg.mae.methods_of(ds)
    ]
    return md_table(["condition", "method", *[REGRESSION_COLUMNS[k][0] for k in metrics]], rows)


def regression_robustness_table(reg: RegressionResults, ds: str) -> str:
    """Per method and protocol: mean over conditions (gaussian eps = 0 left out) and seeds of the
    condition's MAE minus the same seed's clean MAE."""
    res = reg.mae
    protos = reg.protocols(ds)
    rows = []
    for m in res.methods_of(ds):
        clean = res.acc[(ds, m, "clean")]
        cells = []
        for proto in protos:
            diffs = [
                v - clean[s]
                for c in res.conditions(ds, proto)
                if c != "gaussian:0"
                for s, v in res.acc.get((ds, m, c), {}).items()
                if s in clean
            ]
            cells.append(f"{np.mean(diffs):+.3f}" if diffs else "–")
        rows.append([m, *cells])
    return md_table(["method", *protos], rows) if protos else ""


def regression_lines(records: list[dict], datasets: list[str], directory: Path) -> list[str]:
    """Markdown lines of the regression datasets: clean metrics, every condition, MAE under noise
    (figure), and the MAE increase per protocol."""
    reg = RegressionResults(records, datasets)
    lines = [
        "## Regression: clean test set",
        "",
        "MAE (lower is better) and Pearson r as they are; Acc2 / F1 (negative vs non-negative), their "
        "non-zero variants (labels equal to 0 left out) and Acc7 in %. Mean ± sample std over seeds "
        "(worst seed: the largest MAE, the smallest of the others); see "
        "`pmrfusion.eval.regression_metrics`.",
        "",
    ]
    for ds in datasets:
        lines += [f"### {ds}", "", regression_clean_table(reg, ds)]
    if any(reg.protocols(ds) for ds in datasets):
        lines += [
            "## Regression: test conditions",
            "",
            "Each condition against the clean test set: MAE, Acc2, F1 and Pearson r. `missing:X` = X "
            "absent (zero feature in original units on feature vectors; V_m = 0 behind encoders), "
            "`keep:X` = only X present; `gaussian:eps` = noise of variance eps on standardised inputs "
            "of a corrupted modality (p = 0.5 per sample and modality).",
            "",
        ]
        for ds in datasets:
            for proto in reg.protocols(ds):
                lines += [f"### {ds}, {proto}", "", regression_condition_table(reg, ds, proto)]
            fig = figure_name("noise", ds)
            if noise_figure(reg.mae, ds, directory / fig, scale=1.0, ylabel="test MAE (lower is better)"):
                lines += [f"![{ds}]({fig})", ""]
        lines += [
            "## Regression: robustness summary",
            "",
            "Per method and protocol: MAE under the protocol's conditions minus the same seed's clean "
            "MAE, averaged over conditions (Gaussian eps = 0 excluded) and seeds. 0 = no loss; higher "
            "= worse.",
            "",
        ]
        for ds in datasets:
            t = regression_robustness_table(reg, ds)
            if t:
                lines += [f"{ds}:", "", t]
    return lines
