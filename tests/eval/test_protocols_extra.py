"""Salt-and-pepper and conflict protocols, train ranges, and training-label noise."""

import pytest
import torch

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import conditions, conflict_plan, feature_range, generator
from pmrfusion.train.trainer import flip_labels


def _split(n=400, dims=(20, 30), classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = {f"m{i}": torch.randn(n, d, generator=g) for i, d in enumerate(dims)}
    labels = torch.arange(n) % classes
    return TensorSplit(feats, labels, torch.arange(n))


def _train_range(dims=(20, 30)):
    # distinctive values so salt/pepper entries are recognisable
    return {f"m{i}": (torch.full((d,), -7.0) - torch.arange(d), torch.full((d,), 9.0) + torch.arange(d))
            for i, d in enumerate(dims)}  # fmt: skip


def test_salt_pepper_fraction_and_values():
    test, rng = _split(), _train_range()
    conds = list(conditions("salt_pepper", test, seed=3, train_range=rng))
    assert [c.name for c in conds] == ["salt_pepper:1", "salt_pepper:5", "salt_pepper:10"]
    corrupted_cells = []
    for c, eps in zip(conds, (1, 5, 10)):
        assert c.present.all()
        for m, x in test.features.items():
            lo, hi = rng[m]
            y = c.features[m]
            changed = y != x
            is_lo, is_hi = y == lo, y == hi
            # every changed entry is exactly the training min or max of its feature
            assert bool((is_lo | is_hi)[changed].all())
            d = x.shape[1]
            per_row = changed.sum(1)
            k = round(eps / 10 * d)
            # a row is either untouched or has exactly round(eps/10 * d) replaced entries
            assert set(per_row.unique().tolist()) <= {0, k}
            frac_cells = float((per_row == k).float().mean())
            corrupted_cells.append(frac_cells)
            # salt and pepper both occur, about half each
            salt = float(is_hi[changed].float().mean())
            assert 0.4 < salt < 0.6
    # each (sample, modality) cell is corrupted with p = 0.5
    assert all(0.4 < f < 0.6 for f in corrupted_cells)
    # eps = 10 replaces the whole modality vector of a corrupted cell
    x, y = test.features["m1"], conds[-1].features["m1"]
    full = (y != x).all(1)
    assert 0.4 < float(full.float().mean()) < 0.6


def test_salt_pepper_seeded_and_needs_train_range():
    test, rng = _split(), _train_range()
    a = list(conditions("salt_pepper", test, 1, rng))
    b = list(conditions("salt_pepper", test, 1, rng))
    c = list(conditions("salt_pepper", test, 2, rng))
    assert torch.equal(a[1].features["m0"], b[1].features["m0"])
    assert not torch.equal(a[1].features["m0"], c[1].features["m0"])
    with pytest.raises(PMRFusionError, match="train_range"):
        list(conditions("salt_pepper", test, 1))
    bad = {"m0": rng["m0"], "m1": (torch.zeros(3), torch.ones(3))}
    with pytest.raises(PMRFusionError, match="shape"):
        list(conditions("salt_pepper", test, 1, bad))


def test_conflict_fractions_and_class_change():
    test = _split(n=500, classes=5)
    rng = feature_range(test)
    conds = {c.name: c for c in conditions("conflict", test, seed=4, train_range=rng)}
    assert list(conds) == ["conflict:noise", "conflict:swap", "conflict:all"]
    mods = test.modalities

    def changed_views(c):
        return torch.stack([(c.features[m] != test.features[m]).any(1) for m in mods], 1)

    noise = changed_views(conds["conflict:noise"])
    swap = changed_views(conds["conflict:swap"])
    both = changed_views(conds["conflict:all"])
    # exactly one view per affected row; 10% and 40% of the rows, disjoint
    assert int(noise.any(1).sum()) == 50 and int(noise.sum(1).max()) == 1
    assert int(swap.any(1).sum()) == 200 and int(swap.sum(1).max()) == 1
    assert not bool((noise.any(1) & swap.any(1)).any())
    assert torch.equal(both, noise | swap)
    # a swapped view is, exactly, that view of a test row of another class
    c = conds["conflict:swap"]
    for r in torch.nonzero(swap.any(1)).reshape(-1).tolist():
        v = int(torch.nonzero(swap[r]).reshape(-1)[0])
        m = mods[v]
        match = (test.features[m] == c.features[m][r]).all(1)
        src = torch.nonzero(match).reshape(-1)
        assert len(src) >= 1
        assert bool((test.labels[src] != test.labels[r]).all())
    # the noise is Gaussian with std 0.5 x the feature's training range
    c = conds["conflict:noise"]
    diffs = []
    for i, m in enumerate(mods):
        rows = noise[:, i]
        lo, hi = rng[m]
        diffs.append(((c.features[m][rows] - test.features[m][rows]) / (0.5 * (hi - lo))).reshape(-1))
    z = torch.cat(diffs)
    assert abs(float(z.mean())) < 0.1 and 0.9 < float(z.std()) < 1.1


def test_conflict_plan_seeded_and_single_class_rows():
    labels = torch.tensor([0] * 9 + [1])
    p1 = conflict_plan(labels, 2, generator(0, 3), noise_fraction=0.0, swap_fraction=1.0)
    p2 = conflict_plan(labels, 2, generator(0, 3), noise_fraction=0.0, swap_fraction=1.0)
    assert torch.equal(p1.swap_rows, p2.swap_rows) and torch.equal(p1.swap_source, p2.swap_source)
    assert bool((labels[p1.swap_source] != labels[p1.swap_rows]).all())
    # a class seen alone: the only other class has one row -> every class-0 row takes row 9
    assert set(p1.swap_source[labels[p1.swap_rows] == 0].tolist()) == {9}


def test_label_flip_fraction_and_seed():
    labels = torch.arange(1000) % 10
    noisy, rows = flip_labels(labels, 0.2, seed=5)
    assert len(rows) == 200
    assert int((noisy != labels).sum()) == 200
    assert torch.equal(torch.nonzero(noisy != labels).reshape(-1), rows)
    assert set(noisy.tolist()) <= set(range(10))
    again, _ = flip_labels(labels, 0.2, seed=5)
    other, _ = flip_labels(labels, 0.2, seed=6)
    assert torch.equal(noisy, again) and not torch.equal(noisy, other)
    same, none = flip_labels(labels, 0.0, seed=5)
    assert torch.equal(same, labels) and len(none) == 0
    with pytest.raises(PMRFusionError):
        flip_labels(labels, 1.5, seed=0)


def test_prepared_train_range_is_from_training_rows():
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.data.prepared import prepare

    p = prepare(load_dataset("handwritten"), seed=0)
    rng = p.train_range
    for m, x in p.train.features.items():
        assert torch.equal(rng[m][0], x.min(0).values) and torch.equal(rng[m][1], x.max(0).values)
    # the test split goes beyond the training range somewhere: the range is not the test's
    assert any(
        bool((p.test.features[m] > rng[m][1]).any() | (p.test.features[m] < rng[m][0]).any()) for m in rng
    )


def test_label_noise_reaches_training():
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.data.prepared import prepare
    from pmrfusion.methods import build_method
    from pmrfusion.train.trainer import TrainConfig, train

    p = prepare(load_dataset("handwritten"), seed=0)
    model = build_method("concat", p.dims, p.num_classes)
    res = train(model, p.train, p.val, TrainConfig(epochs=1, label_noise=0.25))
    assert res.flipped_labels == round(0.25 * len(p.train))
