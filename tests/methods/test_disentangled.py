"""misa / drfuse: CMD and soft orthogonality against hand values; missing views; aux losses train."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


def test_jensen_shannon_is_drfuses_official_formula_without_renormalisation():
    """DrFuse's JSD module: m = log((p + q) / 2); KLDivLoss(m, log p, log_target=True) element-wise is
    p (log p - m); the row sum of 1/2 (KL(p) + KL(q)). Written out in numpy on sigmoid vectors."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    p, q = 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(-y))
    log_m = np.log(0.5 * (p + q))
    want = 0.5 * ((p * (np.log(p) - log_m)) + (q * (np.log(q) - log_m))).sum(-1)
    got = jensen_shannon(torch.tensor(p), torch.tensor(q)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the former per-row renormalisation gives other values on the same rows
    pn, qn = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    log_mn = np.log(0.5 * (pn + qn))
    renormalised = 0.5 * ((pn * (np.log(pn) - log_mn)) + (qn * (np.log(qn) - log_mn))).sum(-1)
    assert np.abs(got - renormalised).min() > 1e-3


def test_soft_orthogonality_gradient_does_not_flow_through_the_norms():
    """MISA's DiffLoss divides by detached row norms: the gradient equals that of a hand-written
    version with the norms as constants, and differs from the one through the norms."""
    g = torch.Generator().manual_seed(0)
    a0, b0 = torch.randn(6, 4, generator=g), torch.randn(6, 3, generator=g)

    def grads(loss_fn):
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
        loss_fn(a, b).backward()
        return a.grad, b.grad

    def by_hand(a, b, detach):
        a, b = a - a.mean(0), b - b.mean(0)
        na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
        if detach:
            na, nb = na.detach(), nb.detach()
        return ((a / (na + 1e-6)).t() @ (b / (nb + 1e-6))).pow(2).mean()

    got = grads(soft_orthogonality)
    constant_norms = grads(lambda a, b: by_hand(a, b, True))
    through_norms = grads(lambda a, b: by_hand(a, b, False))
    for g_got, g_want, g_other in zip(got, constant_norms, through_norms):
        torch.testing.assert_close(g_got, g_want, rtol=1e-6, atol=1e-7)
        assert float((g_got - g_other).abs().max()) > 1e-3


def test_misa_transformer_defaults_are_the_official_layer_and_configurable():
    """The official nn.TransformerEncoderLayer(hidden, nhead=2) keeps PyTorch's defaults."""
    model = build_method("misa", {"a": 5, "b": 3}, 4, hidden=16)
    layer = model.transformer.layers[0]
    assert layer.linear1.out_features == 2048 and layer.linear2.in_features == 2048
    assert layer.dropout.p == 0.1 and layer.self_attn.num_heads == 2
    assert model.head[2].p == 0.5  # the fusion head's dropout (official --dropout 0.5)
    small = build_method("misa", {"a": 5, "b": 3}, 4, hidden=16, feedforward=32, transformer_dropout=0.2)
    assert small.transformer.layers[0].linear1.out_features == 32
    assert small.transformer.layers[0].dropout.p == 0.2


def test_drfuse_has_the_official_shared_projection_on_every_shared_part():
    torch.manual_seed(0)
    model = build_method("drfuse", {"a": 5, "b": 3}, 4, hidden=8).eval()
    widths = [(m.in_features, m.out_features) for m in model.shared_project if isinstance(m, torch.nn.Linear)]
    assert widths == [(8, 16), (16, 8), (8, 8)]
    feats = {"a": torch.randn(4, 5), "b": torch.randn(4, 3)}
    with torch.no_grad():
        out = model(feats)
        for i, m in enumerate(model.modalities):
            want = model.shared_project(model.shared_enc[m](feats[m]))
            torch.testing.assert_close(out.extras["shared"][:, i], want)


def test_drfuse_losses_are_the_official_sums_on_a_tiny_batch():
    """4 rows, 3 modalities, b absent on rows 0-1, c on row 3: every term by explicit loops."""
    torch.manual_seed(0)
    model = build_method("drfuse", {"a": 5, "b": 3, "c": 2}, 3, hidden=6).eval()
    feats = {"a": torch.randn(4, 5), "b": torch.randn(4, 3), "c": torch.randn(4, 2)}
    present = torch.tensor([[1, 0, 1], [1, 0, 1], [1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    labels = torch.tensor([0, 2, 1, 2])
    with torch.no_grad():
        out = model(feats, present)
        aux = model.auxiliary_losses(out, Batch(feats, present, labels, torch.arange(4)))
    shared, distinct = out.extras["shared"].double(), out.extras["distinct"].double()
    align = distinct_loss = pred_views = 0.0
    for i, j in itertools.combinations(range(3), 2):
        rows = [r for r in range(4) if present[r, i] and present[r, j]]
        terms = []
        for r in rows:
            p, q = shared[r, i].sigmoid(), shared[r, j].sigmoid()
            mid = (p + q) / 2
            terms.append(0.5 * float((p * (p / mid).log() + q * (q / mid).log()).sum()))
        align += sum(terms) / len(terms)
    for i, m in enumerate(model.modalities):
        rows = [r for r in range(4) if present[r, i]]
        cos = [abs(float(F.cosine_similarity(shared[r, i], distinct[r, i], dim=0))) for r in rows]
        ce = [float(F.cross_entropy(out.modality_logits[m][r], labels[r])) for r in rows]
        distinct_loss += sum(cos) / len(cos)
        pred_views += sum(ce) / len(ce)
    # the model's float32 JSD cancels to second order (sigmoids near 1/2 at init): 1e-3 relative
    assert float(aux["align"]) == pytest.approx(align, rel=1e-3)
    assert float(aux["distinct"]) == pytest.approx(distinct_loss, rel=1e-5)
    assert float(aux["pred_views"]) == pytest.approx(pred_views, rel=1e-5)
    assert float(aux["pred_shared"]) == pytest.approx(
        float(F.cross_entropy(out.extras["shared_logits"], labels)), rel=1e-6
    )
    # sums over modalities, not the former mean over every present (row, modality) entry
    pres = present.double()
    per_view = torch.stack(
        [F.cross_entropy(out.modality_logits[m], labels, reduction="none") for m in model.modalities], 1
    )
    pooled = float((per_view.double() * pres).sum() / pres.sum())
    assert float(aux["pred_views"]) > 2.5 * pooled


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
