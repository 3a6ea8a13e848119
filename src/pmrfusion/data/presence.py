"""Which modalities each sample has: the presence matrix of a dataset (naturally missing modalities).

A dataset's `present` is None (every modality of every sample present) or a mapping modality ->
(N,) bool, one entry per modality. An absent (sample, modality) cell is stored as zeros in the
dataset's arrays (so they stay finite), is left out of every scaling statistic, and reaches the
model through the same `present` mask of a `Batch` that the missing-modality protocols and the
modality dropout use (batch presence = data presence AND any protocol / dropout mask).

Rules: a sample with no modality present is an error naming its row; a presence matrix with every
cell present is stored as None (so fully present data behaves exactly as before).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pmrfusion.errors import PMRFusionError

Presence = dict[str, np.ndarray]
TRAIN_MISSING_SALT = 104_729


def check_presence(
    dataset: str, present: Mapping[str, Any] | None, modalities: Sequence[str], n: int
) -> Presence | None:
    """`present` checked: bool (n,) per modality (a modality not named is present everywhere);
    None when every cell is present; a row with no modality present is an error naming it."""
    if present is None:
        return None
    unknown = sorted(set(present) - set(modalities))
    if unknown:
        raise PMRFusionError(f"dataset '{dataset}': presence given for unknown modalities {unknown}")
    out: Presence = {}
    for m in modalities:
        p = np.asarray(present.get(m, np.ones(n, bool))).reshape(-1)
        if p.dtype.kind not in "bui" or (p.dtype.kind != "b" and not np.isin(p, (0, 1)).all()):
            raise PMRFusionError(f"dataset '{dataset}': presence of '{m}' must be booleans (or 0/1)")
        if len(p) != n:
            raise PMRFusionError(f"dataset '{dataset}': presence of '{m}' has {len(p)} rows, not {n}")
        out[m] = p.astype(bool)
    if all(p.all() for p in out.values()):
        return None
    none = ~np.logical_or.reduce([out[m] for m in modalities])
    if none.any():
        row = int(np.flatnonzero(none)[0])
        raise PMRFusionError(
            f"dataset '{dataset}': row {row} has no modality present ({int(none.sum())} such rows): "
            "every sample needs at least one"
        )
    return out


def combine(a: Presence | None, b: Presence | None) -> Presence | None:
    """Cells present in both (None = all present)."""
    if a is None:
        return b
    if b is None:
        return a
    return {m: a[m] & b[m] for m in a}


def presence_matrix(present: Presence | None, modalities: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """(len(rows), M) bool presence of `rows`, columns in the order of `modalities`."""
    rows = np.asarray(rows, dtype=np.int64)
    if present is None:
        return np.ones((len(rows), len(modalities)), dtype=bool)
    return np.stack([present[m][rows] for m in modalities], axis=1)


def presence_patterns(
    present: Presence | None, modalities: Sequence[str] | None = None, n: int | None = None
) -> list[tuple[tuple[str, ...], int]]:
    """(modalities present, number of samples) per presence pattern, most common first (ties in
    order of first appearance). With `present` None: one all-present pattern if `modalities` and
    `n` are given, else []."""
    if present is None:
        return [(tuple(modalities), int(n))] if modalities is not None and n is not None else []
    mods = list(present)
    mat = presence_matrix(present, mods, np.arange(len(next(iter(present.values())))))
    counts = Counter(tuple(m for m, on in zip(mods, row) if on) for row in map(tuple, mat))
    return sorted(counts.items(), key=lambda kv: -kv[1])


def patterns_text(present: Presence | None) -> str:
    """ "presence: a+b 90, a 10" (empty when every cell is present)."""
    if present is None:
        return ""
    parts = [f"{'+'.join(p)} {c}" for p, c in presence_patterns(present)]
    return "presence patterns: " + ", ".join(parts)


def absent_rows_to_zeros(
    dataset: str, modality: str, x: np.ndarray, present: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(features, presence) of one modality: an all-NaN row is absent, a row marked absent is
    zeroed, a partly-NaN (or any inf) row of a present sample is an error naming the row."""
    x = np.asarray(x, dtype=np.float32)
    flat = x.reshape(len(x), -1)
    nan = np.isnan(flat)
    all_nan = nan.all(axis=1) if flat.shape[1] else np.zeros(len(x), bool)
    given = np.ones(len(x), bool) if present is None else np.asarray(present, bool)
    keep = given & ~all_nan
    bad = ~np.isfinite(flat) & keep[:, None]
    if bad.any():
        r, c = np.argwhere(bad)[0]
        what = "partly NaN" if np.isnan(flat[r]).any() else "NaN/inf"
        raise PMRFusionError(
            f"dataset '{dataset}': modality '{modality}' row {r} has NaN/inf values ({what}, first at "
            f"column {c}; {int(bad.sum())} in all): a row is either all NaN (modality absent) or finite"
        )
    if not keep.all():
        x = x.copy()
        x[~keep] = 0.0
    return x, keep


def drop_training_modalities(data: Any, rate: float, seed: int, split: str = "train") -> Any:
    """A copy of `data` whose `split` rows lose each modality independently with probability
    `rate` (seeded by `seed`), on top of the data's own presence; a row left with none keeps one
    of its present modalities, chosen uniformly. Other rows are unchanged. `rate` 0 returns `data`.
    """
    if not 0.0 <= rate < 1.0:
        raise PMRFusionError(f"train_missing must be in [0, 1), got {rate}")
    if rate == 0.0:
        return data
    mods = data.modalities
    rows = data.split(split)
    n = data.num_samples
    base = presence_matrix(data.present, mods, rows)
    rng = np.random.default_rng([seed, TRAIN_MISSING_SALT])
    keep = (rng.random(base.shape) >= rate) & base
    empty = ~keep.any(axis=1)
    if empty.any():
        # one of the row's own present modalities, uniformly: rank of random keys among present cells
        keys = np.where(base[empty], rng.random(base[empty].shape), -1.0)
        keep[np.flatnonzero(empty), keys.argmax(axis=1)] = True
    full = presence_matrix(data.present, mods, np.arange(n))
    full[rows] = keep
    present = check_presence(data.name, {m: full[:, i] for i, m in enumerate(mods)}, mods, n)
    changes: dict[str, Any] = {"present": present, "notes": list(data.notes)}
    if hasattr(data, "features"):
        changes["features"] = {m: np.where(present[m][:, None], x, 0).astype(x.dtype) if present else x
                               for m, x in data.features.items()}  # fmt: skip
    return dataclasses.replace(data, **changes)


__all__ = [
    "Presence",
    "absent_rows_to_zeros",
    "check_presence",
    "combine",
    "drop_training_modalities",
    "patterns_text",
    "presence_matrix",
    "presence_patterns",
]
