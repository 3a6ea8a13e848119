"""Seeded, stratified row splits shared by every dataset type (features, raw files)."""

from __future__ import annotations

import numpy as np

from pmrfusion.tasks import REGRESSION, detect_task


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Seeded per-class train/test split of row indices (at least one test row per class of > 1 rows)."""
    rng = np.random.default_rng(seed)
    if np.asarray(labels).size == 0:
        return {"train": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)}
    train, test = [], []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rows = rows[rng.permutation(len(rows))]
        k = max(1, int(round(test_fraction * len(rows)))) if len(rows) > 1 else 0
        test.append(rows[:k])
        train.append(rows[k:])
    return {"train": np.sort(np.concatenate(train)), "test": np.sort(np.concatenate(test))}


def split_strata(labels: np.ndarray) -> np.ndarray:
    """What to stratify on: the labels, or one stratum (a random split) for regression targets."""
    labels = np.asarray(labels).reshape(-1)
    return np.zeros(len(labels), np.int64) if detect_task(labels) == REGRESSION else labels


def carve_validation(
    train: np.ndarray, strata: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row indices: per stratum of the `train` rows, a seeded `fraction` goes to val,
    keeping at least one training row per stratum. `strata` is indexed by row id."""
    rng = np.random.default_rng(seed)
    val_parts, train_parts = [], []
    for c in np.unique(strata[train]):
        rows = train[strata[train] == c]
        rows = rows[rng.permutation(len(rows))]
        k = min(int(round(fraction * len(rows))), len(rows) - 1)
        val_parts.append(rows[:k])
        train_parts.append(rows[k:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


__all__ = ["carve_validation", "split_strata", "stratified_split"]
