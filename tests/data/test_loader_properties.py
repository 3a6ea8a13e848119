"""Property-based checks (hypothesis) of the data validation and of the public protocol functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_npz
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import available_protocols, conditions, feature_range

FAST = settings(max_examples=25, deadline=None)


@st.composite
def datasets(draw):
    n = draw(st.integers(2, 30))
    dims = draw(st.lists(st.integers(1, 5), min_size=2, max_size=3))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint8]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    feats = {f"m{i}": (rng.normal(size=(n, d)) * 10).astype(dtype) for i, d in enumerate(dims)}
    perm = rng.permutation(n)
    k = draw(st.integers(1, n - 1))
    return feats, rng, perm[:k], perm[k:]


@FAST
@given(datasets(), st.data())
def test_valid_data_loads_and_nan_is_located(case, data):
    feats, rng, train, test = case
    n = len(next(iter(feats.values())))
    labels = rng.permutation(np.arange(n) % 3)  # at least 2 classes (n >= 2)
    d = MultimodalData("p", dict(feats), labels, {"train": train, "test": test})
    assert all(x.dtype == np.float32 for x in d.features.values())
    assert set(d.split("train")) | set(d.split("test")) == set(range(n))
    mod = data.draw(st.sampled_from(sorted(feats)))
    x = feats[mod].astype(np.float64)
    r = data.draw(st.integers(0, n - 1))
    c = data.draw(st.integers(0, x.shape[1] - 1))
    x[r, c] = np.nan
    if x.shape[1] == 1:  # an all-NaN row: that modality is absent for that sample
        gappy = MultimodalData("p", {**feats, mod: x}, labels, {"train": train, "test": test})
        assert np.flatnonzero(~gappy.present[mod]).tolist() == [r]
        return
    with pytest.raises(PMRFusionError, match=f"row {r} has NaN/inf"):
        MultimodalData("p", {**feats, mod: x}, labels, {"train": train, "test": test})


@FAST
@given(datasets(), st.integers(1, 5))
def test_overlapping_splits_never_load(case, k):
    feats, _, train, test = case
    leak = np.concatenate([test, train[:k]])
    n = len(next(iter(feats.values())))
    with pytest.raises(PMRFusionError, match="share"):
        MultimodalData("p", feats, np.arange(n) % 2, {"train": train, "test": leak})


@FAST
@given(st.lists(st.integers(-3, 50), min_size=2, max_size=40))
def test_labels_remap_preserves_order_or_refuse(raw):
    y = np.array(raw)
    n = len(y)
    feats = {"a": np.zeros((n, 1)), "b": np.zeros((n, 2))}
    splits = {"train": np.arange(n - 1), "test": np.array([n - 1])}
    if len(np.unique(y)) < 2:
        with pytest.raises(PMRFusionError, match="at least 2 classes"):
            MultimodalData("p", feats, y, splits)
        return
    d = MultimodalData("p", feats, y, splits)
    classes = np.unique(y)
    assert d.num_classes == len(classes)
    assert np.array_equal(classes[d.labels], y)


@FAST
@given(datasets())
def test_npz_round_trip(tmp_path_factory, case):
    feats, rng, train, test = case
    n = len(next(iter(feats.values())))
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    y = rng.permutation(np.arange(n) % 2)
    np.savez(path, **{f"x_{m}": x for m, x in feats.items()}, y=y, train_idx=train, test_idx=test)
    d = load_npz(path)
    assert d.dims == {m: x.shape[1] for m, x in feats.items()}
    assert np.array_equal(d.split("test"), test.astype(np.int64))


def _split(feats: dict[str, np.ndarray]) -> TensorSplit:
    n = len(next(iter(feats.values())))
    return TensorSplit(
        {m: torch.from_numpy(x.astype(np.float32)) for m, x in feats.items()},
        torch.zeros(n, dtype=torch.long),
        torch.arange(n),
        # the scaled zero feature that stands for an absent modality (protocol "missing")
        {m: torch.full((x.shape[1],), -0.5) for m, x in feats.items()},
    )


@settings(max_examples=15, deadline=None)
@given(datasets(), st.integers(0, 2**31 - 1), st.sampled_from(available_protocols()))
def test_protocols_deterministic_and_absent_modalities_keep_their_fill(case, seed, protocol):
    feats, _, _, _ = case
    test = _split(feats)
    rng = feature_range(test)
    first = list(conditions(protocol, test, seed, rng))
    again = list(conditions(protocol, test, seed, rng))
    assert [c.name for c in first] == [c.name for c in again]
    for a, b in zip(first, again):
        assert torch.equal(a.present, b.present)
        assert a.present.shape == (len(test), len(feats)) and a.present.dtype == torch.bool
        for i, m in enumerate(test.modalities):
            assert torch.equal(a.features[m], b.features[m])
            assert a.features[m].shape == test.features[m].shape
            absent = ~a.present[:, i]
            # noise never touches an absent modality: its rows stay the absent fill
            fill = test.absent_fill[m] * (protocol != "missing_mean")  # mean imputation: scaled 0
            assert torch.all(a.features[m][absent] == fill)
