"""misa / drfuse mechanisms: the auxiliary losses equal reference formulas on the model's own
shared/specific parts, reach the encoders and do what they say in training (weight 0 leaves the
parts less aligned / less disentangled); MISA's private encoders are not the shared one; DrFuse's
class-wise attention is not uniform and gives the logits."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.methods import build_method
from pmrfusion.train.trainer import TrainConfig, seed_everything, train
from pmrfusion.types import Batch

torch.set_num_threads(1)

DIMS = {"a": 6, "b": 5, "c": 4}


def _data(n=240, seed=0):
    """4 classes; a and b each carry half of the label, c carries both weakly."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    feats = {m: torch.randn(n, d, generator=g) for m, d in DIMS.items()}
    feats["a"][:, 0] += 2.0 * (2 * (y // 2) - 1)
    feats["b"][:, 0] += 2.0 * (2 * (y % 2) - 1)
    feats["c"][:, 1] += 0.5 * (y - 1.5)
    return TensorSplit(feats, y, torch.arange(n))


def _batch(data):
    return Batch(data.features, torch.ones(len(data), len(DIMS), dtype=torch.bool), data.labels, data.index)


def _cmd(x, y, k=5):
    mx, my = x.mean(0), y.mean(0)
    total = (mx - my).norm()
    for j in range(2, k + 1):
        total = total + ((x - mx).pow(j).mean(0) - (y - my).pow(j).mean(0)).norm()
    return total


def _orth(a, b):
    """MISA's DiffLoss: centred rows divided by their (detached) norms."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    a = a / (a.norm(dim=1, keepdim=True).detach() + 1e-6)
    b = b / (b.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (a.t() @ b).pow(2).mean()


def _misa_parts(model, features):
    out = model(features)
    inv = [out.embeddings[f"invariant:{m}"] for m in model.modalities]
    spec = [out.embeddings[f"specific:{m}"] for m in model.modalities]
    return out, inv, spec


def _misa_reference(inv, spec):
    pairs = list(itertools.combinations(range(len(inv)), 2))
    sim = sum(_cmd(inv[i], inv[j]) for i, j in pairs) / len(pairs)
    diff = sum(_orth(spec[i], spec[j]) for i, j in pairs) + sum(_orth(s, c) for s, c in zip(spec, inv))
    return sim, diff


def test_misa_sim_and_diff_are_cmd_and_soft_orthogonality_of_its_parts():
    data = _data(64)
    torch.manual_seed(0)
    model = build_method("misa", DIMS, 4, hidden=16).eval()
    with torch.no_grad():
        out, inv, spec = _misa_parts(model, data.features)
        aux = model.auxiliary_losses(out, _batch(data))
    sim, diff = _misa_reference(inv, spec)
    assert float(sim) > 1e-3 and float(diff) > 1e-3
    assert float(aux["sim"]) == pytest.approx(float(sim), rel=1e-4)
    assert float(aux["diff"]) == pytest.approx(float(diff), rel=1e-4)
    assert model.loss_weights == {"sim": 1.0, "diff": 0.3, "recon": 1.0}


def test_misa_private_encoders_are_their_own_and_the_shared_one_is_shared():
    data = _data(32)
    torch.manual_seed(0)
    model = build_method("misa", DIMS, 4, hidden=16).eval()
    with torch.no_grad():
        _, inv, spec = _misa_parts(model, data.features)
        for c, s in zip(inv, spec):
            assert float((c - s).abs().mean()) > 1e-2  # specific != invariant
        # perturbing modality a's private encoder moves only a's specific part
        for p in model.private["a"].parameters():
            p.add_(0.5)
        _, inv2, spec2 = _misa_parts(model, data.features)
        assert not torch.allclose(spec2[0], spec[0])
        for k in range(3):
            torch.testing.assert_close(inv2[k], inv[k])
        for k in (1, 2):
            torch.testing.assert_close(spec2[k], spec[k])
        # perturbing the shared encoder moves every invariant part and no specific part
        for p in model.shared.parameters():
            p.add_(0.5)
        _, inv3, spec3 = _misa_parts(model, data.features)
        for k in range(3):
            assert not torch.allclose(inv3[k], inv2[k])
            torch.testing.assert_close(spec3[k], spec2[k])


def test_misa_sim_and_diff_losses_drive_training():
    """Non-zero in training, reach the encoders, and with weight 0 the invariant parts end less
    aligned (CMD) and the parts less orthogonal than with MISA's weights."""
    data = _data()
    torch.manual_seed(0)
    model = build_method("misa", DIMS, 4, hidden=16).train()
    out, inv, spec = _misa_parts(model, data.features)
    aux = model.auxiliary_losses(out, _batch(data))
    (aux["sim"] + aux["diff"]).backward()
    assert float(model.shared[0].weight.grad.abs().sum()) > 0
    assert all(float(model.private[m][0].weight.grad.abs().sum()) > 0 for m in DIMS)
    ends = {}
    for w in ((1.0, 0.3), (0.0, 0.0)):
        seed_everything(0)
        m = build_method("misa", DIMS, 4, hidden=16, sim_weight=w[0], diff_weight=w[1])
        res = train(m, data, None, TrainConfig(epochs=12, batch_size=48, lr=3e-3))
        assert res.history[0]["sim"] > 0 and res.history[0]["diff"] > 0
        m.eval()
        with torch.no_grad():
            ends[w] = [float(v) for v in _misa_reference(*_misa_parts(m, data.features)[1:])]
    (sim_on, diff_on), (sim_off, diff_off) = ends[(1.0, 0.3)], ends[(0.0, 0.0)]
    assert sim_on < 0.7 * sim_off, ends
    assert diff_on < 0.7 * diff_off, ends


def _drfuse_reference_losses(out, labels):
    """The official sums: JSD of the sigmoid vectors as they are (no renormalisation), mean over
    rows, summed over pairs; |cos|, mean over rows, summed over modalities."""
    shared, distinct = out.extras["shared"], out.extras["distinct"]
    sig = shared.sigmoid()
    align = 0.0
    for i, j in itertools.combinations(range(shared.shape[1]), 2):
        p, q = sig[:, i], sig[:, j]
        mid = (p + q) / 2
        align = align + 0.5 * (p * (p.log() - mid.log()) + q * (q.log() - mid.log())).sum(-1).mean()
    distinct_loss = F.cosine_similarity(shared, distinct, dim=-1).abs().mean(0).sum()
    return align, distinct_loss


def test_drfuse_align_and_distinct_are_js_and_cosine_of_its_parts():
    data = _data(64)
    torch.manual_seed(0)
    model = build_method("drfuse", DIMS, 4, hidden=16).eval()
    with torch.no_grad():
        out = model(data.features)
        aux = model.auxiliary_losses(out, _batch(data))
    align, distinct = _drfuse_reference_losses(out, data.labels)
    assert float(align) > 1e-4 and float(distinct) > 1e-3
    assert float(aux["align"]) == pytest.approx(float(align), rel=1e-3)
    assert float(aux["distinct"]) == pytest.approx(float(distinct), rel=1e-4)
    assert model.loss_weights["align"] == 1.0 and model.loss_weights["distinct"] == 1.0


def test_drfuse_align_and_distinct_losses_drive_training():
    data = _data()
    torch.manual_seed(0)
    model = build_method("drfuse", DIMS, 4, hidden=16).train()
    out = model(data.features)
    aux = model.auxiliary_losses(out, _batch(data))
    (aux["align"] + aux["distinct"]).backward()
    assert all(float(model.shared_enc[m][0].weight.grad.abs().sum()) > 0 for m in DIMS)
    assert all(float(model.distinct_enc[m][0].weight.grad.abs().sum()) > 0 for m in DIMS)
    ends = {}
    for w in (1.0, 0.0):
        seed_everything(0)
        m = build_method("drfuse", DIMS, 4, hidden=16, align_weight=w, distinct_weight=w)
        res = train(m, data, None, TrainConfig(epochs=12, batch_size=48, lr=3e-3))
        assert res.history[0]["align"] > 0 and res.history[0]["distinct"] > 0
        m.eval()
        with torch.no_grad():
            ends[w] = [float(v) for v in _drfuse_reference_losses(m(data.features), data.labels)]
    assert ends[1.0][0] < 0.85 * ends[0.0][0], ends
    assert ends[1.0][1] < 0.7 * ends[0.0][1], ends


def _classwise_logits(model, out, uniform=False):
    """DrFuse's class-wise attention recomputed from the model's maps and its shared/distinct parts."""
    distinct, fused_shared = out.extras["distinct"], out.embeddings["shared"]
    tokens = torch.cat([distinct, fused_shared[:, None]], 1)
    b, t, h = tokens.shape
    k_classes = model.final.weight.shape[0]
    proj = model.attn_proj(tokens).view(b, t, 2 + k_classes, h)
    q, v, k = proj[:, :, 0], proj[:, :, 1], proj[:, :, 2:]
    scores = torch.einsum("bd,btkd->bkt", q.mean(1), k) / math.sqrt(h)
    attn = torch.full_like(scores, 1 / t) if uniform else scores.softmax(-1)
    per_class = torch.einsum("bkt,btd->bkd", attn, v)
    return (per_class * model.final.weight).sum(-1) + model.final.bias, attn


def test_drfuse_classwise_attention_gives_the_logits_and_avoids_an_uninformative_modality():
    """Modality c made pure noise: after training, the attention (which is the prediction rule:
    uniform attention gives other logits) puts less weight on c's token than on a's and b's."""
    data = _data()
    data.features["c"] = torch.randn(len(data), DIMS["c"], generator=torch.Generator().manual_seed(5))
    seed_everything(0)
    model = build_method("drfuse", DIMS, 4, hidden=16)
    train(model, data, None, TrainConfig(epochs=12, batch_size=32, lr=3e-3))
    model.eval()
    with torch.no_grad():
        out = model(data.features)
        want, attn = _classwise_logits(model, out)
        flat, _ = _classwise_logits(model, out, uniform=True)
    torch.testing.assert_close(out.logits, want, rtol=1e-4, atol=1e-4)
    assert float((out.logits - flat).abs().max()) > 0.5  # attention matters for the prediction
    for i, m in enumerate(model.modalities):
        torch.testing.assert_close(out.weights[m], attn[:, :, i].mean(1))
    w = {m: float(out.weights[m].mean()) for m in model.modalities}
    assert w["c"] < 0.5 * min(w["a"], w["b"]), w
    assert float(torch.stack(list(out.weights.values()), 1).std(0).max()) > 0.05  # depends on the sample
    assert float(attn.std(1).max()) > 0.05  # and differs between classes
