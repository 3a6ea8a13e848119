"""PDF: holo-confidence (M=2 official, M>2 generalisation), weights, calibration, detach."""

import math

import pytest
import torch

from pmrfusion.data.loaders import default_data_root, load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.methods import build_method
from pmrfusion.methods.pdf import holo_confidence, pdf_weights, relative_calibration
from pmrfusion.train import TrainConfig, predict, seed_everything, train
from pmrfusion.types import Batch

torch.set_num_threads(1)


def test_holo_two_modalities_matches_official():
    tcp = torch.tensor([[0.9, 0.3], [0.5, 0.5]])
    holo = holo_confidence(tcp)
    a, b = tcp[:, 0], tcp[:, 1]
    official_a = torch.log(b) / torch.log(a * b)
    official_b = torch.log(a) / torch.log(a * b)
    assert torch.allclose(holo, torch.stack([official_a, official_b], -1), atol=1e-6)


def test_holo_three_modalities_hand_computed_and_no_nan():
    tcp = torch.tensor([[0.5, 0.25, 0.125]])  # logs: -1, -2, -3 (base 2 ratio irrelevant)
    holo = holo_confidence(tcp)
    assert torch.allclose(holo, torch.tensor([[5 / 6, 4 / 6, 3 / 6]]), atol=1e-5)
    extreme = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])  # the official code's NaN cases
    h = holo_confidence(extreme)
    assert torch.isfinite(h).all() and (h >= 0).all() and (h <= 1).all()


def test_pdf_weights_softmax_of_cobelief_and_mask():
    tcp = torch.tensor([[0.9, 0.3]])
    cb = tcp + holo_confidence(tcp)
    assert torch.allclose(pdf_weights(tcp), torch.softmax(cb, -1))
    present = torch.tensor([[False, True]])
    assert torch.allclose(pdf_weights(tcp, present=present), torch.tensor([[0.0, 1.0]]))
    none = pdf_weights(tcp, present=torch.tensor([[False, False]]))
    assert torch.isfinite(none).all()


def test_relative_calibration_matches_official_two_modalities():
    probs = torch.tensor([[[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]]])
    K = 3
    du = (probs - 1 / K).abs().mean(-1)[0]
    rc = relative_calibration(probs)[0]
    assert rc[0] == pytest.approx(1.0) and rc[1] == pytest.approx(float(du[1] / du[0]))
    uniform = torch.full((1, 2, 3), 1 / 3)
    assert torch.equal(relative_calibration(uniform), torch.ones(1, 2))
    tcp = torch.tensor([[0.6, 0.6]])
    w = pdf_weights(tcp, probs, calibrate=True)
    cb = tcp + holo_confidence(tcp)
    assert torch.allclose(w, torch.softmax(cb * rc, -1))


def _batch(B=8, K=4):
    g = torch.Generator().manual_seed(1)
    feats = {"a": torch.randn(B, 6, generator=g), "b": torch.randn(B, 3, generator=g) * 3}
    return Batch(
        feats, torch.ones(B, 2, dtype=torch.bool), torch.randint(0, K, (B,), generator=g), torch.arange(B)
    )


def test_calibration_only_in_eval_and_tcp_is_detached():
    b = _batch()
    torch.manual_seed(0)
    model = build_method("pdf", {"a": 6, "b": 3}, 4, hidden=16, dropout=0.0)
    model.train()
    w_train = model(b.features, b.present).weights["a"]
    model.eval()
    w_eval = model(b.features, b.present).weights["a"]
    assert not torch.allclose(w_train, w_eval)
    model.train()
    out = model(b.features, b.present)
    tcp_loss = model.auxiliary_losses(out, b)["tcp"]
    tcp_loss.backward()
    assert all(p.grad is None for p in model.heads.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.confid.parameters())
    # fused weights are detached: the fused CE does not reach the ConfidNets
    model.zero_grad()
    out = model(b.features, b.present)
    torch.nn.functional.cross_entropy(out.logits, b.labels).backward()
    assert all(p.grad is None for p in model.confid.parameters())


def test_gradients_finite_on_real_batch():
    from pmrfusion.train.trainer import total_loss

    if default_data_root() is None:
        pytest.skip("shared data not present")
    p = prepare(load_dataset("cub"))
    model = build_method("pdf", p.dims, p.num_classes)
    model.train()
    loss, _ = total_loss(model, p.train.batch(torch.arange(32)))
    loss.backward()
    assert torch.isfinite(loss.detach()) and not math.isnan(float(loss.detach()))
    assert all(q.grad is None or torch.isfinite(q.grad).all() for q in model.parameters())


def test_pdf_trains_on_handwritten():
    p = prepare(load_dataset("handwritten"))
    seed_everything(0)
    model = build_method("pdf", p.dims, p.num_classes)
    train(model, p.train, p.val, TrainConfig(epochs=6, patience=6))
    acc = float((predict(model, p.test.features).argmax(-1) == p.test.labels).float().mean())
    assert acc >= 0.9
