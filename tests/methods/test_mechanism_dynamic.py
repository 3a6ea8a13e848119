"""Dynamic-weight mechanisms (qmf, pdf, iid-l/q/p, and the view weights of tmc / ecml / drfuse): the
fusion rule pinned at model level against reference formulas, the weights favour an informative
modality over a noise one after training, QMF's ranking regulariser and IID's L_ic / L_dc are
non-zero, reach the parameters and change what training produces."""

import pytest
import torch
import torch.nn.functional as F

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.methods import build_method
from pmrfusion.methods.base import option_names
from pmrfusion.train.trainer import TrainConfig, seed_everything, train
from pmrfusion.types import Batch

torch.set_num_threads(1)
pytest.importorskip("geomloss")

DIMS = {"a": 6, "b": 5}
SMALL = dict(hidden=16, proj_dim=16, d1=4, rip_dim=4, confid_hidden=16)


def _small(name, **over):
    fields = set(option_names(name))  # the options the method reads
    return {k: v for k, v in {**SMALL, **over}.items() if k in fields}


def _data(n=240, seed=0, b_is_noise=False):
    """4 classes. Default: a tells y // 2 and b tells y % 2. `b_is_noise`: a tells both, b nothing."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    a = torch.randn(n, 6, generator=g)
    b = torch.randn(n, 5, generator=g)
    a[:, 0] += 2.0 * (2 * (y // 2) - 1)
    (a if b_is_noise else b)[:, 1] += 2.0 * (2 * (y % 2) - 1)
    return TensorSplit({"a": a, "b": b}, y, torch.arange(n) + 1000 * seed)


def _batch(data):
    return Batch(data.features, torch.ones(len(data), 2, dtype=torch.bool), data.labels, data.index)


def _holo(tcp):
    logs = tcp.clamp(1e-4, 1 - 1e-4).log()
    return (logs.sum(-1, keepdim=True) - logs) / logs.sum(-1, keepdim=True)


def _rc(probs):
    du = (probs - 1 / probs.shape[-1]).abs().mean(-1)
    return du / du.max(-1, keepdim=True).values


# -------------------------------------------------------------------------- fusion rules by formula


def test_qmf_fuses_by_energy_weights_not_by_averaging():
    torch.manual_seed(0)
    model = build_method("qmf", DIMS, 4, hidden=16).eval()
    x = _data(16).features
    with torch.no_grad():
        out = model(x)
    f = [out.modality_logits[m] for m in model.modalities]
    w = [torch.logsumexp(z, -1) / 10 for z in f]  # alpha = -0.1 times the energy -logsumexp
    for m, wm in zip(model.modalities, w):
        torch.testing.assert_close(out.weights[m], wm)
    torch.testing.assert_close(out.logits, w[0][:, None] * f[0] + w[1][:, None] * f[1])
    assert float((out.logits - (f[0] + f[1]) / 2).abs().max()) > 1e-2


def _pdf_reference(tcp, probs, calibrate):
    cb = tcp + _holo(tcp)
    return torch.softmax(cb * _rc(probs) if calibrate else cb, -1)


@pytest.mark.parametrize("name", ["pdf", "iid-p"])
def test_pdf_weights_are_softmax_of_cobelief_with_relative_calibration_in_eval(name):
    torch.manual_seed(0)
    model = build_method(name, DIMS, 4, **_small(name, dropout=0.0))
    x = _data(16).features
    for training in (True, False):
        model.train(training)
        with torch.no_grad():
            out = model(x)
        prefix = "tcp:" if name == "pdf" else None
        if prefix:
            tcp = torch.stack([out.embeddings[f"tcp:{m}"] for m in model.modalities], -1)
        else:
            tcp = out.embeddings["weighting:tcp"]
        probs = torch.stack([out.modality_logits[m].softmax(-1) for m in model.modalities], 1)
        want = _pdf_reference(tcp, probs, calibrate=not training)
        got = torch.stack([out.weights[m] for m in model.modalities], -1)
        torch.testing.assert_close(got, want)
        if not training:  # calibration changes the weights on these inputs
            assert float((want - _pdf_reference(tcp, probs, False)).abs().max()) > 1e-3


@pytest.mark.parametrize("name", ["iid-l", "iid-q", "iid-p"])
def test_iid_fuses_weighted_representations_through_the_shared_head(name):
    torch.manual_seed(0)
    model = build_method(name, DIMS, 4, **_small(name)).eval()
    x = _data(16).features
    with torch.no_grad():
        out = model(x)
    z = [out.embeddings[m] for m in model.modalities]
    w = torch.stack([out.weights[m] for m in model.modalities], -1)
    if name == "iid-l":
        torch.testing.assert_close(w, torch.softmax(model.weight_logits, 0).expand_as(w))
    elif name == "iid-q":
        uni = [model.head(zm) for zm in z]
        torch.testing.assert_close(w, torch.stack([torch.logsumexp(u, -1) / 10 for u in uni], -1))
    fused = w[:, :1] * z[0] + w[:, 1:] * z[1]
    torch.testing.assert_close(out.embeddings["fused"], fused)
    torch.testing.assert_close(out.logits, model.head(fused))
    for m, zm in zip(model.modalities, z):
        torch.testing.assert_close(out.modality_logits[m], model.head(zm))


# ---------------------------------------------------------------- weights react to the data

WEIGHTED = ["qmf", "pdf", "iid-l", "iid-q", "iid-p", "tmc", "ecml"]


@pytest.mark.parametrize("name", WEIGHTED)
def test_weights_favour_the_informative_modality_over_a_noise_one(name):
    """b carries no label information: on held-out rows the trained model weighs it less than a."""
    train_rows, test_rows = _data(b_is_noise=True), _data(seed=1, b_is_noise=True)
    seed_everything(0)
    model = build_method(name, DIMS, 4, **_small(name))
    epochs, lr = {"qmf": (30, 3e-3), "tmc": (15, 1e-2), "ecml": (15, 1e-2)}.get(name, (15, 3e-3))
    train(model, train_rows, None, TrainConfig(epochs=epochs, batch_size=48, lr=lr))
    model.eval()
    with torch.no_grad():
        out = model(test_rows.features)
    w = {m: float(out.weights[m].mean()) for m in DIMS}
    assert w["a"] > 1.3 * w["b"], w


# ------------------------------------------------------------------------- QMF's ranking regulariser


def test_qmf_ranking_regulariser_is_nonzero_and_reaches_the_heads():
    data = _data(64)
    torch.manual_seed(0)
    model = build_method("qmf", DIMS, 4, hidden=16, mode="paper").train()
    rank = model.auxiliary_losses(model(data.features), _batch(data))["rank"]  # history updated first
    assert float(rank.detach()) > 0.05
    rank.backward()
    assert all(float(model.heads[m].net[1].weight.grad.abs().sum()) > 0 for m in DIMS)


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_qmf_ranking_regulariser_orders_weights_against_the_loss_history():
    """Paper mode, weight 10 vs 0: the ranking term ends lower and the confidences more
    anti-correlated with the per-sample loss history (the order it asks for); the default (code
    mode, weight 0.1) changes the trained model too."""
    data = _data()
    corr, rank = {}, {}
    for lam in (10.0, 0.0):
        seed_everything(0)
        m = build_method("qmf", DIMS, 4, hidden=16, mode="paper", lam=lam)
        hist = train(m, data, None, TrainConfig(epochs=10, batch_size=48, lr=3e-3)).history
        assert hist[0]["rank"] > 0
        rank[lam] = hist[-1]["rank"]
        m.eval()
        with torch.no_grad():
            out = m(data.features)
        corr[lam] = sum(
            _corr(out.weights[k], m.history.kappa(i, data.index, "paper").float())
            for i, k in enumerate(m.modalities)
        )
    assert rank[10.0] < rank[0.0], rank
    assert corr[10.0] < corr[0.0], corr
    states = {}
    for lam in (0.1, 0.0):
        seed_everything(0)
        m = build_method("qmf", DIMS, 4, hidden=16, lam=lam)
        train(m, data, None, TrainConfig(epochs=3, batch_size=48, lr=3e-3))
        states[lam] = m.state_dict()
    assert any(not torch.equal(states[0.1][k], states[0.0][k]) for k in states[0.0] if "heads" in k)


# -------------------------------------------------------------------------------- IID's L_ic, L_dc


@pytest.mark.parametrize("name", ["iid-l", "iid-q"])
def test_iid_informatic_and_coherence_losses_drive_training(name):
    data = _data()
    torch.manual_seed(0)
    model = build_method(name, DIMS, 4, **_small(name)).train()
    aux = model.auxiliary_losses(model(data.features), _batch(data))
    assert float(aux["ic"].detach()) > 0.1 and float(aux["dc"].detach()) > 1e-2
    assert model.loss_weights["ic"] == 0.1 and model.loss_weights["dc"] == 0.1
    for key in ("ic", "dc"):
        model.zero_grad()
        aux = model.auxiliary_losses(model(data.features), _batch(data))
        aux[key].backward()
        assert all(float(model.encoders[m][1].weight.grad.abs().sum()) > 0 for m in DIMS), key
    runs = {}
    for cfg in ({}, {"beta": 1.0}, {"beta": 0.0}, {"alpha": 1.0}, {"alpha": 0.0}):
        seed_everything(0)
        m = build_method(name, DIMS, 4, **_small(name, **cfg))
        hist = train(m, data, None, TrainConfig(epochs=8, batch_size=48, lr=3e-3)).history
        runs[tuple(cfg.items())] = hist, m.state_dict()
    end = {k: h[-1] for k, (h, _) in runs.items()}
    assert end[(("beta", 1.0),)]["dc"] < 0.8 * end[(("beta", 0.0),)]["dc"], end  # brings the z_m together
    assert end[(("alpha", 1.0),)]["ic"] < 0.8 * end[(("alpha", 0.0),)]["ic"], end
    assert runs[(("alpha", 1.0),)][0][0]["ic"] > 2 * end[(("alpha", 1.0),)]["ic"]  # falls in training
    default = runs[()][1]
    for off in ((("beta", 0.0),), (("alpha", 0.0),)):  # the default weights (0.1) act
        assert any(not torch.equal(default[k], runs[off][1][k]) for k in default), off


def test_iid_l_static_weights_are_learned_per_modality():
    data = _data(b_is_noise=True)
    seed_everything(0)
    model = build_method("iid-l", DIMS, 4, **_small("iid-l"))
    assert torch.equal(model.weight_logits.detach(), torch.zeros(2))  # starts uniform
    train(model, data, None, TrainConfig(epochs=6, batch_size=48, lr=3e-3))
    w = F.softmax(model.weight_logits.detach(), 0)
    assert float(w[0] - w[1]) > 0.05, w


@pytest.mark.parametrize("method", ["qmf", "tmc", "ecml", "iid-q"])
def test_reported_weight_of_an_absent_modality_is_zero(method):
    """`ModelOutput.weights` are the weights the fusion applies: an absent modality gets 0."""
    torch.manual_seed(0)
    model = build_method(method, {"a": 5, "b": 4}, 3)
    model.eval()
    x = {"a": torch.randn(6, 5), "b": torch.randn(6, 4)}
    weights = model(x, torch.tensor([[True, False]] * 6)).weights
    assert torch.all(weights["b"] == 0) and torch.all(weights["a"] != 0)
