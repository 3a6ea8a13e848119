"""Checks for data that loads but is wrong: labels, features, modality names, class counts, splits.

Each check either returns a corrected value with a note (said on stderr by the CLI) or raises
`PMRFusionError` with one line. `MultimodalData` and the loaders call them; new tasks extend
`check_labels` (one place for every label rule).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from pmrfusion.errors import PMRFusionError
from pmrfusion.tasks import CLASSIFICATION, REGRESSION, check_task

MODALITY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def check_modality_name(dataset: str, name: Any) -> str:
    """A modality name is used in file names and as an option key: letters, digits, `_` and `-`."""
    if not isinstance(name, str) or not MODALITY_NAME.match(name):
        raise PMRFusionError(
            f"dataset '{dataset}': modality name {name!r} is not allowed "
            "(use letters, digits, '_' or '-', not starting with '-')"
        )
    return name


def check_features(dataset: str, modality: str, x: Any) -> np.ndarray:
    """Real numeric features (N, d) as float32; strings, objects, complex numbers are refused."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        kind = {"c": "complex", "U": "string", "S": "bytes", "O": "object"}.get(x.dtype.kind, str(x.dtype))
        raise PMRFusionError(
            f"dataset '{dataset}': modality '{modality}' holds {kind} values, not real numbers"
        )
    return x


def check_num_classes(dataset: str, value: Any) -> int:
    """`num_classes` as stored in a file: a single integer (a 1-element array is accepted)."""
    arr = np.asarray(value)
    if (
        arr.size != 1
        or arr.dtype.kind not in "iu"
        and not (arr.dtype.kind == "f" and np.isfinite(arr).all() and float(arr.reshape(-1)[0]).is_integer())
    ):
        raise PMRFusionError(f"dataset '{dataset}': num_classes must be one integer, got {value!r}")
    return int(arr.reshape(-1)[0])


def check_labels(
    dataset: str, labels: Any, num_classes: int = -1, task: str = CLASSIFICATION
) -> tuple[np.ndarray, int, list[str]]:
    """(labels, num_classes, notes) for `task` (`pmrfusion.tasks`: classification or regression).

    Classification: integer-valued numeric labels in 0..num_classes-1. Without a stored class count,
    labels that are not 0..K-1 (e.g. {3, 7, 9}) are remapped to 0..K-1 in sorted order, with a note.
    Regression: finite real labels as float32, num_classes 1 (one real output).
    """
    y = np.asarray(labels).reshape(-1)
    if y.dtype.kind not in "biuf":
        raise PMRFusionError(f"dataset '{dataset}': labels must be numbers, got dtype {y.dtype}")
    if check_task(task) == REGRESSION:
        if not np.isfinite(y).all():
            raise PMRFusionError(f"dataset '{dataset}': regression labels must be finite numbers (NaN/inf)")
        return y.astype(np.float32), 1, []
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise PMRFusionError(f"dataset '{dataset}': labels hold NaN/inf")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise PMRFusionError(f"dataset '{dataset}': class labels must be integers")
    y = y.astype(np.int64)
    notes: list[str] = []
    if y.size and y.min() < 0:
        raise PMRFusionError(f"dataset '{dataset}': labels out of range: negative label {y.min()}")
    if num_classes < 0 and y.size:
        classes = np.unique(y)
        if classes[0] != 0 or classes[-1] != len(classes) - 1:
            shown = ", ".join(str(c) for c in classes[:8]) + (", ..." if len(classes) > 8 else "")
            notes.append(f"labels {{{shown}}} are not 0..{len(classes) - 1}: remapped in sorted order")
            y = np.searchsorted(classes, y).astype(np.int64)
        num_classes = len(classes)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise PMRFusionError(
            f"dataset '{dataset}': labels out of range: found {y.min()}..{y.max()}, "
            f"expected 0..{num_classes - 1}"
        )
    if y.size and num_classes < 2:
        raise PMRFusionError(
            f"dataset '{dataset}': classification needs at least 2 classes, got {num_classes}"
        )
    return y, num_classes, notes


def check_split_indices(dataset: str, split: str, idx: Any, n: int) -> np.ndarray:
    """Integer row indices inside 0..n-1, each at most once."""
    idx = np.asarray(idx).reshape(-1)
    if idx.dtype.kind == "f" and np.isfinite(idx).all() and np.all(idx == np.round(idx)):
        idx = idx.astype(np.int64)  # MATLAB stores indices as doubles
    if idx.size and idx.dtype.kind not in "iu":
        raise PMRFusionError(f"dataset '{dataset}': split '{split}' must hold integers")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise PMRFusionError(f"dataset '{dataset}': split '{split}' has row indices outside 0..{n - 1}")
    if np.unique(idx).size != idx.size:
        raise PMRFusionError(f"dataset '{dataset}': split '{split}' lists some rows more than once")
    return idx


def check_disjoint_splits(dataset: str, splits: dict[str, np.ndarray]) -> None:
    """Train and test must be non-empty, and no row may be in two splits (test never leaks)."""
    for name in ("train", "test"):
        if name in splits and len(splits[name]) == 0:
            raise PMRFusionError(f"dataset '{dataset}': the {name} split is empty")
    names = sorted(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = np.intersect1d(splits[a], splits[b])
            if shared.size:
                raise PMRFusionError(
                    f"dataset '{dataset}': splits '{a}' and '{b}' share {shared.size} rows "
                    f"(first: {int(shared[0])})"
                )


def one_based_splits(splits: dict[str, np.ndarray], n: int) -> bool:
    """True if the split indices look 1-based (as MATLAB writes them): none is 0 and one is n."""
    rows = [np.asarray(v).reshape(-1) for v in splits.values() if np.asarray(v).size]
    if not rows:
        return False
    allrows = np.concatenate(rows)
    if allrows.dtype.kind not in "iuf":
        return False
    return bool(allrows.min() >= 1 and allrows.max() == n)


__all__ = [
    "check_disjoint_splits",
    "check_features",
    "check_labels",
    "check_modality_name",
    "check_num_classes",
    "check_split_indices",
    "one_based_splits",
]
