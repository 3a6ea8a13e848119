"""The RCML (AAAI 2024) data protocol: whole-dataset min-max scaling, random 80/20 runs, conflictive test set.

Follows the official code (jiajunsi/RCML ``data.py`` / ``main.py``): every view is min-max scaled to
[0, 1] over *all* rows before splitting; each run shuffles the rows and takes the first 80% for
training (``int(0.8 * N)``), the rest for testing, with no validation split. The official shuffle is
unseeded; here run r uses ``np.random.default_rng(r)`` so runs are reproducible.
"""

from __future__ import annotations

import numpy as np
import torch

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.prepared import VECTOR, PreparedData
from pmrfusion.data.scaling import Standardizer
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError

RCML_TRAIN_FRACTION = 0.8
RCML_SIGMA = 0.5
RCML_NOISE_RATIO = 0.1
RCML_CONFLICT_RATIO = 0.4
RCML_CONFLICT_SALT = 104_729  # keeps the conflict stream apart from the split stream


def minmax_whole(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-feature min-max scaling to [0, 1] over all rows (sklearn MinMaxScaler: constant -> 0)."""
    out = {}
    for m, x in features.items():
        x = x.astype(np.float64)
        lo, hi = x.min(0), x.max(0)
        span = hi - lo
        span[span == 0] = 1.0
        out[m] = ((x - lo) / span).astype(np.float32)
    return out


def rcml_split(num_rows: int, run: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) of run `run`: a seeded shuffle, first int(0.8 N) rows train."""
    if num_rows < 2:
        raise PMRFusionError(f"RCML split needs at least 2 rows, got {num_rows}")
    index = np.random.default_rng(run).permutation(num_rows)
    cut = int(RCML_TRAIN_FRACTION * num_rows)
    return index[:cut], index[cut:]


def _split(features: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray) -> TensorSplit:
    return TensorSplit(
        {m: torch.from_numpy(np.ascontiguousarray(x[rows])) for m, x in features.items()},
        torch.from_numpy(labels[rows].astype(np.int64)),
        torch.from_numpy(rows.astype(np.int64)),
    )


def identity_scaler(dims: dict[str, int]) -> Standardizer:
    """A Standardizer that leaves features as they are (the RCML data is already min-max scaled)."""
    return Standardizer(
        {m: np.zeros(d, np.float32) for m, d in dims.items()},
        {m: np.ones(d, np.float32) for m, d in dims.items()},
    )


def prepare_rcml(data: MultimodalData, run: int, scaled: dict[str, np.ndarray] | None = None) -> PreparedData:
    """PreparedData of run `run` under the RCML protocol (no validation split)."""
    scaled = minmax_whole(data.features) if scaled is None else scaled
    train_rows, test_rows = rcml_split(data.num_samples, run)
    return PreparedData(
        data.name,
        _split(scaled, data.labels, train_rows),
        None,
        _split(scaled, data.labels, test_rows),
        data.num_classes,
        data.dims,
        dict.fromkeys(data.modalities, VECTOR),
        data.task,
        data,
        scaler=identity_scaler(data.dims),
    )


def conflictive_features(
    features: dict[str, np.ndarray],
    labels: np.ndarray,
    test_rows: np.ndarray,
    num_classes: int,
    rng: np.random.Generator,
    sigma: float = RCML_SIGMA,
    ratio_noise: float = RCML_NOISE_RATIO,
    ratio_conflict: float = RCML_CONFLICT_RATIO,
) -> dict[str, np.ndarray]:
    """All rows' features after RCML's ``postprocessing(test_index, addNoise, addConflict)`` (a copy).

    1. noise: ``int(ratio_noise * T)`` test rows drawn without replacement; each gets N(0, sigma^2)
       noise on ``randint(V)`` distinct random views (possibly none).
    2. conflict: ``int(ratio_conflict * T)`` test rows drawn without replacement (independently of
       step 1); each has one random view v replaced by view v of the *first* row (dataset order) of
       class (y + 1) mod K. As in the official code, that first row is read live: if it is a test
       row already noised or already altered, its current values are copied.
    Train rows are never changed. Per-row loops: T is a few hundred rows, and the order of random
    draws follows the official code.
    """
    views = list(features)
    x = {m: features[m].astype(np.float32, copy=True) for m in views}
    test_rows = np.asarray(test_rows, dtype=np.int64)
    n_views = len(views)
    for i in rng.choice(test_rows, size=int(ratio_noise * len(test_rows)), replace=False):
        for v in rng.choice(n_views, size=int(rng.integers(n_views)), replace=False):
            row = x[views[v]][i]
            x[views[v]][i] = rng.normal(row, sigma).astype(np.float32)
    first = {}
    for c in range(num_classes):
        hits = np.flatnonzero(labels == c)
        if len(hits):
            first[c] = int(hits[0])
    for i in rng.choice(test_rows, size=int(ratio_conflict * len(test_rows)), replace=False):
        v = int(rng.integers(n_views))
        target = (int(labels[i]) + 1) % num_classes
        if target in first:
            x[views[v]][i] = x[views[v]][first[target]]
    return x


def conflictive_test(
    scaled: dict[str, np.ndarray], labels: np.ndarray, test_rows: np.ndarray, num_classes: int, run: int
) -> TensorSplit:
    """The conflictive test split of run `run` (seeded), RCML's default settings."""
    rng = np.random.default_rng(run * RCML_CONFLICT_SALT + 1)
    x = conflictive_features(scaled, labels, test_rows, num_classes, rng)
    return _split(x, labels, np.asarray(test_rows))


__all__ = [
    "RCML_CONFLICT_RATIO",
    "RCML_NOISE_RATIO",
    "RCML_SIGMA",
    "conflictive_features",
    "conflictive_test",
    "minmax_whole",
    "prepare_rcml",
    "rcml_split",
]
