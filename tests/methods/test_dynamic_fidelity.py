"""QMF / PDF / IID fidelity fixes: QMF's regulariser weight, IID-Q/P per-modality task loss."""

import pytest
import torch

from pmrfusion.bench.runner import fit_method
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.eval.protocols import conditions
from pmrfusion.methods import build_method
from pmrfusion.methods.qmf import QMFConfig
from pmrfusion.train.trainer import TrainConfig, predict, seed_everything


def test_qmf_regulariser_weight_is_the_papers_by_default():
    assert QMFConfig().lam == 0.1
    dims = {"a": 4, "b": 3}
    assert build_method("qmf", dims, 3).loss_weights["rank"] == 0.1
    assert build_method("qmf", dims, 3, lam=1.0).loss_weights["rank"] == 1.0  # text-image code


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    from pmrfusion.types import Batch

    feats = {"a": torch.randn(8, 4, generator=g), "b": torch.randn(8, 3, generator=g)}
    return Batch(feats, torch.ones(8, 2, dtype=torch.bool), torch.arange(8) % 3, torch.arange(8))


@pytest.mark.parametrize("method", ["iid-q", "iid-p"])
def test_iid_dynamic_variants_add_the_unimodal_task_loss(method):
    seed_everything(0)
    batch = _batch()
    model = build_method(method, {"a": 4, "b": 3}, 3, dc=False)
    out = model(batch.features, batch.present)
    losses = model.auxiliary_losses(out, batch)
    want = sum(
        torch.nn.functional.cross_entropy(out.modality_logits[m], batch.labels) for m in model.modalities
    )
    assert torch.allclose(losses["unimodal"], want)
    assert model.loss_weights["unimodal"] == 1.0
    old = build_method(method, {"a": 4, "b": 3}, 3, dc=False, unimodal_weight=0.0)
    assert "unimodal" not in old.auxiliary_losses(old(batch.features, batch.present), batch)
    static = build_method("iid-l", {"a": 4, "b": 3}, 3, dc=False)
    assert "unimodal" not in static.auxiliary_losses(static(batch.features, batch.present), batch)


@pytest.fixture(scope="module")
def hw():
    return prepare(load_dataset("handwritten"), 0.15, 0)


def _acc(model, feats, labels):
    return float((predict(model, feats).argmax(-1) == labels).float().mean())


@pytest.mark.xfail(
    strict=True,  # passes unexpectedly once the gap closes: then drop the mark
    raises=AssertionError,  # only the accuracy gap is expected; pytest.fail below is a real failure
    reason="open finding: with the unimodal loss iid-q reaches 73.0 vs late 96.25 at Gaussian eps 10 "
    "(Handwritten seed 0, results/missing_variants): feature noise raises the noisy modality's energy "
    "confidence, so QMF-style weights favour it (qmf itself: 84.5 vs 95.4)",
)
def test_iid_q_no_longer_collapses_under_noise(hw):
    """Handwritten, Gaussian eps 10: iid-q stays near `late` trained here with the same budget.

    L_dc is off to keep the test cheap; the collapse came from the missing unimodal loss (main:
    iid-q 60.6 vs late 95.4 at eps 10), not from L_dc.
    """
    tc = TrainConfig(epochs=20, patience=20)
    noisy = next(c for c in conditions("gaussian", hw.test, 0) if c.name == "gaussian:10")
    late, _ = fit_method("late", hw, 0, {}, tc)
    iidq, res = fit_method("iid-q", hw, 0, {"dc": False}, tc)
    uni = [h["unimodal"] for h in res.history]
    if not uni[-1] < 0.5 * uni[0]:  # the per-modality task loss is trained: a real failure if not
        pytest.fail(f"iid-q unimodal loss did not halve: {uni[0]:.3f} -> {uni[-1]:.3f}")
    a_late, a_iidq = _acc(late, noisy.features, hw.test.labels), _acc(iidq, noisy.features, hw.test.labels)
    assert a_iidq > a_late - 0.08, (a_iidq, a_late)
