import pytest
import torch

from pmrfusion.bench.runner import fit_method
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import conditions, missing_subsets
from pmrfusion.methods import build_method
from pmrfusion.optim import OptimizerSpec
from pmrfusion.train.trainer import TrainConfig, predict, seed_everything, train


@pytest.fixture(scope="module")
def hw():
    return prepare(load_dataset("handwritten"), 0.15, 0)


def test_deterministic_under_seed(hw):
    tc = TrainConfig(epochs=3)
    a, _ = fit_method("sg-concat", hw, 1, {}, tc)
    b, _ = fit_method("sg-concat", hw, 1, {}, tc)
    c, _ = fit_method("sg-concat", hw, 2, {}, tc)
    pa, pb, pc = (predict(m, hw.test.features) for m in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, pc)


def test_group_optimizer_owns_its_parameters(hw):
    seed_everything(0)
    model = build_method("sg-concat", hw.dims, hw.num_classes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = TrainConfig(epochs=1, group_optimizers={"pmr": OptimizerSpec("sgd", lr=0.0, weight_decay=0.0)})
    train(model, hw.train, None, frozen)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("pmr."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("backend."))
    assert model.default_group_optimizers["pmr"].kind == "sgd"  # the paper's default
    with pytest.raises(PMRFusionError, match="no parameter group"):
        train(
            build_method("concat", hw.dims, hw.num_classes),
            hw.train,
            None,
            TrainConfig(epochs=1, group_optimizers={"pmr": OptimizerSpec()}),
        )


def test_early_stopping_restores_best_validation_epoch(hw):
    seed_everything(0)
    model = build_method("concat", hw.dims, hw.num_classes)
    result = train(model, hw.train, hw.val, TrainConfig(epochs=30, patience=5))
    best = max(h["val_accuracy"] for h in result.history)
    assert result.best_val_accuracy == best
    logits = predict(model, hw.val.features)
    assert float((logits.argmax(-1) == hw.val.labels).float().mean()) == pytest.approx(best)


def test_handwritten_accuracy_floor(hw):
    model, _ = fit_method("sg-concat", hw, 0, {}, TrainConfig())
    acc = float((predict(model, hw.test.features).argmax(-1) == hw.test.labels).float().mean())
    assert acc >= 0.98  # chance is 0.10; a linear model on raw pixels alone gets ~0.96


def test_cub_accuracy_floor(data_root):
    cub = prepare(load_dataset("cub", data_root), 0.15, 0)
    model, _ = fit_method("sg-concat", cub, 0, {}, TrainConfig())
    acc = float((predict(model, cub.test.features).argmax(-1) == cub.test.labels).float().mean())
    assert acc >= 0.88  # image-only logistic regression: 0.875


def test_protocol_conditions(hw):
    assert len(missing_subsets(["a", "b", "c"])) == 6
    assert len(missing_subsets([f"v{i}" for i in range(6)])) == 12
    names = [c.name for c in conditions("missing", hw.test, 0)]
    assert "missing:pixel" in names and "keep:morph" in names and len(names) == 12
    for c in conditions("missing", hw.test, 0):
        for i, m in enumerate(hw.test.modalities):
            assert bool(c.present[0, i]) == (m in c.present_modalities)
            if m not in c.present_modalities:  # the papers' zero feature in original units
                torch.testing.assert_close(c.features[m], hw.test.absent_fill[m].expand_as(c.features[m]))
    g1 = {c.name: c for c in conditions("gaussian", hw.test, 3)}
    g2 = {c.name: c for c in conditions("gaussian", hw.test, 3)}
    assert list(g1) == ["gaussian:0", "gaussian:1", "gaussian:5", "gaussian:10"]
    assert torch.equal(g1["gaussian:0"].features["pixel"], hw.test.features["pixel"])
    assert torch.equal(g1["gaussian:5"].features["pixel"], g2["gaussian:5"].features["pixel"])
    changed = torch.stack(
        [(g1["gaussian:10"].features[m] != hw.test.features[m]).any(1) for m in hw.test.modalities], 1
    )
    assert 0.4 < changed.float().mean() < 0.6  # p = 0.5 per sample and modality
    diff = g1["gaussian:10"].features["pixel"] - hw.test.features["pixel"]
    noisy = diff[changed[:, 0]]
    assert noisy.var().item() == pytest.approx(10.0, rel=0.05)  # variance eps


def test_modality_keep_mask_is_seeded_and_never_empty():
    from pmrfusion.train.trainer import modality_keep_mask

    a = modality_keep_mask(20000, 3, 0.3, torch.Generator().manual_seed(5))
    b = modality_keep_mask(20000, 3, 0.3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert a.any(1).all()
    # dropped cells: 0.3 minus the rescued rows (0.3^3 of rows get one cell back out of 3)
    assert 1 - a.float().mean().item() == pytest.approx(0.3 - 0.3**3 / 3, abs=0.01)
    with pytest.raises(PMRFusionError, match="modality dropout"):
        modality_keep_mask(4, 2, 1.0, torch.Generator())


def test_modality_dropout_trains_for_missing_views(hw):
    def keep_one(model):
        accs = [
            float((predict(model, c.features, c.present).argmax(-1) == hw.test.labels).float().mean())
            for c in conditions("missing", hw.test, 0)
            if len(c.present_modalities) == 1
        ]
        return sum(accs) / len(accs)

    plain, _ = fit_method("concat", hw, 0, {}, TrainConfig(epochs=40))
    augmented, _ = fit_method("concat", hw, 0, {}, TrainConfig(epochs=40, modality_dropout=0.3))
    assert keep_one(augmented) > keep_one(plain) + 0.05  # measured: 0.666 -> 0.760
