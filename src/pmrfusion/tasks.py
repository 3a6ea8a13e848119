"""Task kinds (classification / regression): detection, the regression loss, and which methods regress.

A regression model is any registered method built with ``num_classes=1``: its "logits" are one
real output per sample. Methods whose weighting is defined only through class probabilities refuse.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from pmrfusion.errors import PMRFusionError

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
REGRESSION_LOSSES = ("l1", "mse")

# method -> why it cannot regress (its fusion weights or auxiliary losses need class probabilities)
CLASSIFICATION_ONLY: dict[str, str] = {
    "qmf": "its energy confidence is a log-sum-exp over class logits and its ranking loss uses per-sample CE",
    "pdf": "its confidence target is the softmax probability of the true class",
    "iid-l": "its informatic constraint is a cross-entropy on class logits",
    "iid-q": "its weights and informatic constraint use class probabilities",
    "iid-p": "its weights and informatic constraint use class probabilities",
    "tmc": "its opinions are Dirichlet distributions over classes (evidential loss)",
    "ecml": "its opinions are Dirichlet distributions over classes (evidential loss)",
    "drfuse": "its class-wise attention and per-view predictions need class logits",
}


def detect_task(labels: np.ndarray) -> str:
    """ "regression" when labels are floats that are not all integers, else "classification"."""
    labels = np.asarray(labels)
    floats = np.issubdtype(labels.dtype, np.floating) and labels.size and np.all(np.isfinite(labels))
    if floats and not np.all(labels == np.round(labels)):
        return REGRESSION
    return CLASSIFICATION


def check_task(task: str) -> str:
    if task not in TASKS:
        raise PMRFusionError(f"unknown task '{task}': use one of {', '.join(TASKS)}")
    return task


def check_regression_method(name: str) -> None:
    """One clear line, before any training, when `name` has no regression form."""
    if name in CLASSIFICATION_ONLY:
        raise PMRFusionError(f"method '{name}' does not support regression: {CLASSIFICATION_ONLY[name]}")


def regression_loss(outputs: Tensor, targets: Tensor, kind: str = "l1") -> Tensor:
    """L1 (the MOSI convention) or MSE between a (B, 1) or (B,) output and float targets."""
    pred = outputs.reshape(-1)
    target = targets.reshape(-1).to(pred.dtype)
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "mse":
        return F.mse_loss(pred, target)
    raise PMRFusionError(f"unknown regression loss '{kind}': use one of {', '.join(REGRESSION_LOSSES)}")


__all__ = [
    "CLASSIFICATION",
    "CLASSIFICATION_ONLY",
    "REGRESSION",
    "REGRESSION_LOSSES",
    "TASKS",
    "check_regression_method",
    "check_task",
    "detect_task",
    "regression_loss",
]
