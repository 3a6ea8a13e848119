"""Classification metrics (scikit-learn) and the spread over seeds that every table reports."""

from __future__ import annotations

import numpy as np
from torch import Tensor


def classification_metrics(logits: Tensor, labels: Tensor, num_classes: int) -> dict[str, float]:
    """accuracy (fraction), macro-F1, and AUC when the task is binary."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score  # heavy: imported on first use

    y = labels.cpu().numpy()
    pred = logits.argmax(-1).cpu().numpy()
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=np.arange(num_classes), zero_division=0)),
    }
    if num_classes == 2 and len(np.unique(y)) == 2:
        prob = logits.softmax(-1)[:, 1].cpu().numpy()
        out["auc"] = float(roc_auc_score(y, prob))
    return out


def sample_std(values) -> float:
    """Sample standard deviation over seeds (ddof = 1); 0.0 for a single value."""
    v = np.asarray(values, dtype=float)
    return float(v.std(ddof=1)) if v.size > 1 else 0.0
