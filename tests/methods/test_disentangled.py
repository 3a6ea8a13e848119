"""misa / drfuse: CMD and soft orthogonality against hand values; missing views; aux losses train."""

import pytest
import torch

from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.methods import build_method
from pmrfusion.objectives.disentangled import central_moment_discrepancy, jensen_shannon, soft_orthogonality
from pmrfusion.train.trainer import TrainConfig, predict, seed_everything, train
from pmrfusion.types import Batch


def test_cmd_by_hand():
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.5], [0.5]])
    # means equal; central moments of x: k=2 -> 1/4, k=3 -> 0, k=4 -> 1/16, k=5 -> 0; y: all 0
    assert central_moment_discrepancy(x, y).item() == pytest.approx(0.3125, abs=1e-6)
    assert central_moment_discrepancy(x, y, moments=2).item() == pytest.approx(0.25, abs=1e-6)
    shifted = torch.tensor([[0.25], [0.25]])
    assert central_moment_discrepancy(shifted, y, moments=1).item() == pytest.approx(0.25, abs=1e-6)


def test_soft_orthogonality_by_hand():
    a = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, -2.0]])
    # rows centred then unit-normed: a's column 0 is (1, -1, 0), b's column 1 is (1, 1, -1): orthogonal
    assert soft_orthogonality(a, b).item() == pytest.approx(0.0, abs=1e-6)
    # A^T A = [[2, 0], [0, 0]] -> mean of squares 4 / 4
    assert soft_orthogonality(a, a).item() == pytest.approx(1.0, abs=1e-4)


def test_jensen_shannon_by_hand():
    p = torch.tensor([[1.0, 0.0]])
    q = torch.tensor([[0.0, 1.0]])
    assert jensen_shannon(p, q).item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-5)
    assert jensen_shannon(p, p).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", ["misa", "drfuse"])
def test_any_m_unequal_dims_and_missing_views(name):
    torch.manual_seed(0)
    model = build_method(name, {"a": 5, "b": 3, "c": 7}, 4, hidden=16)
    feats = {"a": torch.randn(8, 5), "b": torch.randn(8, 3), "c": torch.randn(8, 7)}
    present = torch.ones(8, 3, dtype=torch.bool)
    present[:4, 1] = False
    model.eval()
    out = model(feats, present)
    assert out.logits.shape == (8, 4) and torch.isfinite(out.logits).all()
    # an absent view's values do not matter
    other = dict(feats, b=torch.randn(8, 3) * 100)
    changed = model(other, present).logits
    assert torch.allclose(changed[:4], out.logits[:4], atol=1e-5)
    assert not torch.allclose(changed[4:], out.logits[4:], atol=1e-3)
    batch = Batch(feats, present, torch.arange(8) % 4, torch.arange(8))
    aux = model.auxiliary_losses(out, batch)
    assert set(aux) == set(model.loss_weights) and all(torch.isfinite(v) for v in aux.values())


@pytest.fixture(scope="module")
def cub_with_concat(data_root):
    prep = prepare(load_dataset("cub", data_root), 0.15, 0)
    seed_everything(0)
    base = build_method("concat", prep.dims, prep.num_classes)
    train(base, prep.train, None, TrainConfig(epochs=8, batch_size=64))
    return prep, base


@pytest.mark.parametrize("name", ["misa", "drfuse"])
def test_trains_on_cub_and_aux_losses_fall(name, cub_with_concat):
    prep, base = cub_with_concat
    seed_everything(0)
    model = build_method(name, prep.dims, prep.num_classes, hidden=64)
    res = train(model, prep.train, None, TrainConfig(epochs=8, batch_size=64))
    hist = res.history
    falling = {"misa": "recon", "drfuse": "pred_views"}[name]
    assert hist[-1][falling] < hist[0][falling]

    def acc(m):
        return float((predict(m, prep.test.features).argmax(-1) == prep.test.labels).float().mean())

    assert acc(model) > acc(base) - 0.08
