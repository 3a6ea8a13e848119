"""Regression metrics of the multimodal sentiment literature (CMU-MOSI / MOSEI), and the task dispatch.

Conventions (Zadeh et al.; MulT / MISA evaluation code):
- ``mae``: mean absolute error; ``corr``: Pearson r.
- ``acc2`` / ``f1``: sign accuracy and weighted F1, negative (< 0) vs non-negative (>= 0), all samples.
- ``acc2_nonzero`` / ``f1_nonzero``: the same on samples whose *label* is not 0, positive (> 0) vs
  negative (< 0); the prediction's class is ``pred > 0``.
- ``acc7``: prediction and label rounded to the nearest integer and clipped to [-3, 3].
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from pmrfusion.eval.metrics import classification_metrics

REGRESSION_METRICS = ("mae", "corr", "acc2", "f1", "acc2_nonzero", "f1_nonzero", "acc7")
LOWER_IS_BETTER = frozenset({"mae"})  # the "worst seed" of these is the largest value


def _numpy(x) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def regression_metrics(pred, labels) -> dict[str, float]:
    """MAE, Pearson r, Acc2/F1 in both conventions and Acc7 of predictions against float labels."""
    from scipy.stats import pearsonr  # heavy (scipy, sklearn): imported on first use
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

    p, y = _numpy(pred), _numpy(labels)
    out = {"mae": float(mean_absolute_error(y, p))}
    constant = np.ptp(p) == 0 or np.ptp(y) == 0
    out["corr"] = 0.0 if constant else float(pearsonr(p, y)[0])
    yb, pb = y >= 0, p >= 0
    out["acc2"] = float(accuracy_score(yb, pb))
    out["f1"] = float(f1_score(yb, pb, average="weighted", zero_division=0))
    nz = y != 0
    if nz.any():
        out["acc2_nonzero"] = float(accuracy_score(y[nz] > 0, p[nz] > 0))
        out["f1_nonzero"] = float(f1_score(y[nz] > 0, p[nz] > 0, average="weighted", zero_division=0))
    else:
        out["acc2_nonzero"] = out["f1_nonzero"] = float("nan")
    out["acc7"] = float(accuracy_score(np.clip(np.round(y), -3, 3), np.clip(np.round(p), -3, 3)))
    return out


def task_metrics(outputs: Tensor, labels: Tensor, num_classes: int) -> dict[str, float]:
    """Regression metrics when the model has one output and labels are float, else classification."""
    if num_classes == 1 or labels.is_floating_point():
        return regression_metrics(outputs.reshape(-1), labels)
    return classification_metrics(outputs, labels, num_classes)


def primary_metric(records) -> str:
    """The metric tables lead with: "accuracy" when records have it, else "mae" (regression)."""
    names = {r["metric"] for r in records}
    return "accuracy" if "accuracy" in names or not names else ("mae" if "mae" in names else sorted(names)[0])


__all__ = ["LOWER_IS_BETTER", "REGRESSION_METRICS", "primary_metric", "regression_metrics", "task_metrics"]
