"""The two missing-modality protocols, their fills, and QMF-code salt-and-pepper."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pmrfusion.data.absent import absent_values, fill_absent
from pmrfusion.data.batching import with_dropped
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.data.scaling import Standardizer
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import conditions, generator, salt_pepper_qmf_corrupt
from pmrfusion.train.trainer import TrainConfig, train


def tiny() -> MultimodalData:
    a = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0], [7.0, 0.0]], dtype=np.float32)
    b = np.array([[10.0], [20.0], [30.0], [40.0]], dtype=np.float32)
    labels = np.array([0, 1, 0, 1])
    return MultimodalData(
        "tiny", {"a": a, "b": b}, labels, {"train": np.arange(2), "test": np.arange(2, 4)}, 2
    )


def test_zero_point_is_minus_mean_over_std():
    scaler = Standardizer.fit(tiny().features, np.arange(2))
    # a: mean (2, 4), population std (1, 2); b: mean 15, std 5
    np.testing.assert_allclose(scaler.zero_point()["a"], [-2.0, -2.0])
    np.testing.assert_allclose(scaler.zero_point()["b"], [-3.0])
    back = scaler.zero_point()["a"] * scaler.scale["a"] + scaler.mean["a"]
    np.testing.assert_allclose(back, 0.0, atol=1e-6)  # it is the original-unit zero


def test_two_missing_protocols_feed_different_absent_values():
    p = prepare(tiny(), 0.0, 0)
    assert torch.allclose(p.test.absent_fill["a"], torch.tensor([-2.0, -2.0]))
    assert torch.equal(p.absent_fill["b"], p.test.absent_fill["b"])
    papers = {c.name: c for c in conditions("missing", p.test, 0)}
    mean = {c.name: c for c in conditions("missing_mean", p.test, 0)}
    assert sorted(papers) == ["missing:a", "missing:b"]
    assert sorted(mean) == ["missing_mean:a", "missing_mean:b"]
    c, m = papers["missing:a"], mean["missing_mean:a"]
    assert c.protocol == "missing" and m.protocol == "missing_mean"
    assert torch.equal(c.features["a"], torch.tensor([[-2.0, -2.0], [-2.0, -2.0]]))  # -mean/std
    assert torch.equal(m.features["a"], torch.zeros(2, 2))  # mean imputation = scaled zero
    assert torch.equal(c.features["b"], p.test.features["b"]) and torch.equal(
        m.features["b"], c.features["b"]
    )
    assert torch.equal(c.present, torch.tensor([[False, True], [False, True]]))
    assert torch.equal(c.present, m.present) and c.present_modalities == ["b"]


def test_real_dataset_variants_differ_and_keep_present_rows(data_root):
    p = prepare(load_dataset("cub"), 0.15, 0)
    mods = p.modalities
    for cz, cm in zip(conditions("missing", p.test, 0), conditions("missing_mean", p.test, 0)):
        assert cm.name.replace("_mean", "") == cz.name
        for i, m in enumerate(mods):
            if m in cz.present_modalities:
                assert torch.equal(cz.features[m], p.test.features[m])
                assert bool(cz.present[:, i].all())
            else:
                assert not bool(cz.present[:, i].any())
                assert torch.equal(cm.features[m], torch.zeros_like(cm.features[m]))
                want = torch.from_numpy(-p.scaler.mean[m] / p.scaler.scale[m]).expand_as(cz.features[m])
                assert torch.allclose(cz.features[m], want)
                # far from the mean on real features: the two protocols really differ
                assert float(cz.features[m].abs().mean()) > 0.5


def test_zero_feature_needs_the_scaler():
    bare = TensorSplit(
        {"a": torch.ones(3, 2), "b": torch.ones(3, 1)}, torch.zeros(3, dtype=torch.long), torch.arange(3)
    )
    with pytest.raises(PMRFusionError, match="zero point"):
        list(conditions("missing", bare, 0))
    assert len(list(conditions("missing_mean", bare, 0))) == 2
    with pytest.raises(PMRFusionError, match="absent fill"):
        absent_values("median", bare.features, None)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_fill_absent_touches_only_absent_cells(n, seed):
    g = torch.Generator().manual_seed(seed)
    feats = {"a": torch.randn(n, 3, generator=g), "b": torch.randn(n, 2, generator=g)}
    present = torch.rand(n, 2, generator=g) < 0.5
    fill = {"a": torch.tensor([7.0, 8.0, 9.0]), "b": torch.tensor([-1.0, -2.0])}
    out = fill_absent(feats, present, fill)
    for i, m in enumerate(feats):
        rows = present[:, i]
        assert torch.equal(out[m][rows], feats[m][rows])
        assert torch.equal(out[m][~rows], fill[m].expand(int((~rows).sum()), -1))


def test_modality_dropout_uses_the_chosen_fill():
    p = prepare(tiny(), 0.0, 0)
    batch = p.train.batch(torch.arange(2), torch.tensor([[False, True], [True, True]]))
    zf = with_dropped(batch, absent_values("zero_feature", p.train.features, p.train.absent_fill))
    mi = with_dropped(batch, absent_values("mean", p.train.features, p.train.absent_fill))
    assert torch.equal(zf.features["a"][0], torch.tensor([-2.0, -2.0]))
    assert torch.equal(mi.features["a"][0], torch.zeros(2))
    assert torch.equal(zf.features["a"][1], batch.features["a"][1])
    assert TrainConfig().absent_fill == "zero_feature"
    with pytest.raises(PMRFusionError, match="absent fill"):
        train(torch.nn.Module(), p.train, None, TrainConfig(absent_fill="nan"))


def _range(feats):
    return {m: (x.amin(0), x.amax(0)) for m, x in feats.items()}


@pytest.mark.parametrize("eps", [5.0, 10.0])
def test_salt_pepper_qmf_density_and_modality_probability(eps):
    g = torch.Generator().manual_seed(0)
    feats = {"a": torch.randn(3000, 40, generator=g), "b": torch.randn(3000, 30, generator=g)}
    rng = _range(feats)
    out, cells = salt_pepper_qmf_corrupt(feats, rng, eps, generator(3, 4, int(eps * 1000)))
    assert float(cells.float().mean()) == pytest.approx(0.5 * eps / 10, abs=0.02)
    for i, (m, x) in enumerate(feats.items()):
        changed = out[m] != x
        assert not bool(changed[~cells[:, i]].any())  # untouched cells stay clean
        hit = cells[:, i]
        lo, hi = rng[m]
        salt = (out[m] == hi) & changed
        pepper = (out[m] == lo) & changed
        assert torch.equal(salt | pepper, changed)  # only min / max values are written
        # density 0.1 per entry in a hit cell (entries already at min/max can look unchanged)
        assert float(changed[hit].float().mean()) == pytest.approx(0.1, abs=0.01)
        assert float(salt[hit].float().mean()) == pytest.approx(0.05, abs=0.01)
    again, _ = salt_pepper_qmf_corrupt(feats, rng, eps, generator(3, 4, int(eps * 1000)))
    assert all(torch.equal(again[m], out[m]) for m in feats)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 40), st.sampled_from([1.0, 5.0, 10.0]), st.integers(0, 10_000))
def test_salt_pepper_qmf_never_touches_absent_modalities(n, eps, seed):
    g = torch.Generator().manual_seed(seed)
    feats = {"a": torch.randn(n, 4, generator=g), "b": torch.randn(n, 3, generator=g)}
    present = torch.rand(n, 2, generator=g) < 0.5
    out, cells = salt_pepper_qmf_corrupt(
        feats, _range(feats), eps, torch.Generator().manual_seed(seed), present
    )
    assert not bool((cells & ~present).any())
    for i, m in enumerate(feats):
        assert torch.equal(out[m][~present[:, i]], feats[m][~present[:, i]])


def test_salt_pepper_protocols_are_named_apart(data_root):
    p = prepare(load_dataset("handwritten"), 0.15, 0)
    qmf = list(conditions("salt_pepper_qmf", p.test, 0, p.train_range))
    ours = list(conditions("salt_pepper", p.test, 0, p.train_range))
    assert [c.name for c in qmf] == ["salt_pepper_qmf:1", "salt_pepper_qmf:5", "salt_pepper_qmf:10"]
    assert [c.name for c in ours] == ["salt_pepper:1", "salt_pepper:5", "salt_pepper:10"]
    def hit_rows(c):
        return sum(
            (c.features[m] != p.test.features[m]).any(1).float().mean() for m in p.modalities
        )
    # QMF code: eps sets how often a modality is hit (0.5 * eps/10), ours always hits half the cells
    assert float(hit_rows(qmf[0])) < 0.15 * len(p.modalities) < float(hit_rows(ours[0]))
