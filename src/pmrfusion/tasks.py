"""Task kinds (classification / regression): detection and the regression loss.

A regression model is any registered method built with ``num_classes=1``: its "logits" are one
real output per sample. Methods whose weighting is defined only through class probabilities say so
where they register (`register_method(..., classification_only=why)`) and refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pmrfusion.errors import PMRFusionError

if TYPE_CHECKING:
    from torch import Tensor

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
REGRESSION_LOSSES = ("l1", "mse")


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


def regression_loss(outputs: Tensor, targets: Tensor, kind: str = "l1") -> Tensor:
    """L1 (the MOSI convention) or MSE between a (B, 1) or (B,) output and float targets."""
    import torch.nn.functional as F  # torch on first use: task detection (data loading) stays torch-free

    pred = outputs.reshape(-1)
    target = targets.reshape(-1).to(pred.dtype)
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "mse":
        return F.mse_loss(pred, target)
    raise PMRFusionError(f"unknown regression loss '{kind}': use one of {', '.join(REGRESSION_LOSSES)}")


__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "REGRESSION_LOSSES",
    "TASKS",
    "check_task",
    "detect_task",
    "regression_loss",
]
