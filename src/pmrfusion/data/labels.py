"""Class labels as users have them: strings or any integers, encoded with a stored class list.

Encoding follows scikit-learn's `LabelEncoder`: the classes are the sorted unique labels and a
label's index is its position in that list. Integer labels that already are 0..K-1 are kept as
they are (`classes` None); other integers (e.g. {3, 7, 9} or negatives) and strings are encoded,
and `classes` keeps the user's labels as strings (`decode_labels` gives them back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pmrfusion.errors import PMRFusionError


def is_text_labels(labels: Any) -> bool:
    """True when the labels are strings (or Python objects, e.g. a pandas object column)."""
    return np.asarray(labels).dtype.kind in "USO"


def encode_labels(dataset: str, labels: Any) -> tuple[np.ndarray, list[str] | None]:
    """(int64 class indices, classes): sorted unique classes (LabelEncoder semantics).

    `classes` is None when the labels are integers 0..K-1 already (then they come back unchanged).
    """
    y = np.asarray(labels).reshape(-1)
    if y.dtype.kind in "USO":
        text = np.array([_label_text(dataset, v) for v in y.tolist()], dtype=object)
        classes, idx = np.unique(text.astype(str), return_inverse=True)
        return idx.astype(np.int64), [str(c) for c in classes]
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise PMRFusionError(f"dataset '{dataset}': class labels must be integers or strings")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise PMRFusionError(f"dataset '{dataset}': labels of dtype {y.dtype} are not classes")
    classes, idx = np.unique(y, return_inverse=True)
    if y.size == 0 or (classes[0] == 0 and classes[-1] == len(classes) - 1):
        return y.astype(np.int64), None
    return idx.astype(np.int64), [str(c) for c in classes.tolist()]


def encode_with(dataset: str, labels: Any, classes: Sequence[str]) -> np.ndarray:
    """Indices of `labels` in a given class list (strings compared as text); an unknown label is an error."""
    y = np.asarray(labels).reshape(-1)
    if y.dtype.kind in "iu" and (y.size == 0 or (y.min() >= 0 and y.max() < len(classes))):
        return y.astype(np.int64)  # already indices
    lookup = {str(c): i for i, c in enumerate(classes)}
    text = [_label_text(dataset, v) for v in y.tolist()]
    unknown = next((t for t in text if t not in lookup), None)
    if unknown is not None:
        raise PMRFusionError(
            f"dataset '{dataset}': label '{unknown[:40]}' is not one of the classes {list(classes)[:8]}"
        )
    return np.array([lookup[t] for t in text], dtype=np.int64)


def _label_text(dataset: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise PMRFusionError(f"dataset '{dataset}': a class label is empty (None/NaN)")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    if not text:
        raise PMRFusionError(f"dataset '{dataset}': a class label is empty")
    return text


def decode_labels(classes: Sequence[str] | None, indices: Any) -> np.ndarray:
    """The user's labels of class indices: `classes[i]` (strings), or the indices when `classes` is None."""
    idx = np.asarray(indices, dtype=np.int64)
    if classes is None:
        return idx
    table = np.asarray(list(classes), dtype=object)
    if idx.size and (idx.min() < 0 or idx.max() >= len(table)):
        raise PMRFusionError(f"class index out of range 0..{len(table) - 1}")
    return table[idx]


__all__ = ["decode_labels", "encode_labels", "encode_with", "is_text_labels"]
