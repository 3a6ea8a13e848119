"""tmc / ecml mechanisms: the fusion rule (Dempster-Shafer vs averaged evidence) pinned by hand on
models whose views emit fixed evidence, the task losses (sum vs mean of the M + 1 EDL terms), and
ECML's conflictive-degree loss (value, gradient, and what training with it does)."""

import math

import pytest
import torch

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.methods import build_method
from pmrfusion.train.trainer import TrainConfig, seed_everything, total_loss, train
from pmrfusion.types import Batch

torch.set_num_threads(1)

# view a: evidence (2, 1) -> alpha (3, 2), b = (0.4, 0.2), u = 0.4
# view b: evidence (1, 3) -> alpha (2, 4), b = (1/6, 1/2), u = 1/3
E_A, E_B = [2.0, 1.0], [1.0, 3.0]
# Dempster-Shafer: C = 0.4 * 1/2 + 0.2 * 1/6 = 7/30; b = (8/23, 11/23), u = 4/23 -> S = 11.5, alpha = (5, 6.5)
DS_ALPHA = [5.0, 6.5]
# averaged evidence: e = (1.5, 2) -> alpha = (2.5, 3)
AVG_ALPHA = [2.5, 3.0]


def _fixed_evidence(name, evidences, rows=3, **cfg):
    """A model (hidden=0: Linear + Softplus per view) whose view m emits `evidences[m]` for any input."""
    dims = {"a": 3, "b": 2, "c": 4}
    dims = dict(list(dims.items())[: len(evidences)])
    model = build_method(name, dims, 2, hidden=0, **cfg).eval()
    with torch.no_grad():
        for m, e in zip(model.modalities, evidences):
            lin = model.nets[m][0]
            lin.weight.zero_()
            lin.bias.copy_(torch.log(torch.expm1(torch.tensor(e))))  # softplus^-1
    g = torch.Generator().manual_seed(0)
    feats = {m: torch.randn(rows, d, generator=g) for m, d in dims.items()}
    return model, feats


def _pinned(out, alpha):
    a = torch.tensor(alpha).expand(out.logits.shape)
    torch.testing.assert_close(out.extras["alpha_fused"], a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.logits, torch.log(a / a.sum(-1, keepdim=True)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.uncertainty, 2 / a.sum(-1), rtol=1e-5, atol=1e-5)


def test_tmc_fuses_by_dempster_shafer_hand_values():
    model, feats = _fixed_evidence("tmc", [E_A, E_B])
    _pinned(model(feats), DS_ALPHA)
    # the vacuous opinion of an absent view is the identity of the combination
    only_a = torch.tensor([[True, False]] * 3)
    torch.testing.assert_close(model(feats, only_a).extras["alpha_fused"], torch.tensor([[3.0, 2.0]] * 3))


def test_ecml_fuses_by_averaging_evidence_hand_values():
    model, feats = _fixed_evidence("ecml", [E_A, E_B])
    _pinned(model(feats), AVG_ALPHA)


def test_three_views_fold_in_order():
    """DS folds pairwise: ((a + b) + c); the average folds as ((e_a + e_b) / 2 + e_c) / 2."""
    e_c = [0.5, 0.5]  # alpha (1.5, 1.5): b = (1/6, 1/6), u = 2/3
    # DS of the (a, b) opinion [b = (8/23, 11/23), u = 4/23] with c: C = (8 + 11) / (23 * 6) = 19/138
    b1, u1 = torch.tensor([8 / 23, 11 / 23]), 4 / 23
    b2, u2 = torch.tensor([1 / 6, 1 / 6]), 2 / 3
    c = float(b1.sum() * b2.sum() - (b1 * b2).sum())
    b = (b1 * b2 + b1 * u2 + b2 * u1) / (1 - c)
    u = u1 * u2 / (1 - c)
    assert c == pytest.approx(19 / 138)
    ds = (b * 2 / u + 1).tolist()
    model, feats = _fixed_evidence("tmc", [E_A, E_B, e_c])
    _pinned(model(feats), ds)
    model, feats = _fixed_evidence("ecml", [E_A, E_B, e_c])
    _pinned(model(feats), [((2 + 1) / 2 + 0.5) / 2 + 1, ((1 + 3) / 2 + 0.5) / 2 + 1])


def _edl(alpha, y, coef):
    """Reference EDL term per row: psi(S) - psi(alpha_y) + coef * KL(Dir(alpha~) || Dir(1))."""
    k = alpha.shape[-1]
    onehot = torch.nn.functional.one_hot(y, k).to(alpha.dtype)
    s = alpha.sum(-1)
    ce = torch.digamma(s) - (onehot * torch.digamma(alpha)).sum(-1)
    at = (alpha - 1) * (1 - onehot) + 1
    st = at.sum(-1)
    kl = (
        torch.lgamma(st)
        - math.lgamma(k)
        - torch.lgamma(at).sum(-1)
        + ((at - 1) * (torch.digamma(at) - torch.digamma(st)[:, None])).sum(-1)
    )
    return ce + coef * kl


@pytest.mark.parametrize("name, fused, scale", [("tmc", DS_ALPHA, 1.0), ("ecml", AVG_ALPHA, 1 / 3)])
def test_task_loss_is_sum_for_tmc_and_mean_for_ecml_of_the_three_edl_terms(name, fused, scale):
    model, feats = _fixed_evidence(name, [E_A, E_B], annealing_step=4)
    y = torch.tensor([0, 1, 1])
    batch = Batch(feats, torch.ones(3, 2, dtype=torch.bool), y, torch.arange(3))
    for epoch, coef in ((1, 0.25), (4, 1.0)):
        model.on_epoch_start(epoch)
        terms = sum(_edl(torch.tensor([a] * 3), y, coef) for a in ([3.0, 2.0], [2.0, 4.0], fused))
        got = model.task_loss(model(feats), batch)
        assert float(got.detach()) == pytest.approx(float(terms.mean()) * scale, rel=1e-5)


def test_ecml_conflict_loss_hand_value_and_it_is_what_the_trainer_adds():
    # p_a = (0.6, 0.4), p_b = (1/3, 2/3): pd = 4/15; (1 - u_a)(1 - u_b) = 0.6 * 2/3 = 0.4; both orders
    model, feats = _fixed_evidence("ecml", [E_A, E_B])
    batch = Batch(feats, torch.ones(3, 2, dtype=torch.bool), torch.tensor([0, 1, 1]), torch.arange(3))
    with torch.no_grad():
        out = model(feats)
        aux = model.auxiliary_losses(out, batch)
        total, _ = total_loss(model, batch)
    assert float(aux["conflict"]) == pytest.approx(2 * 4 / 15 * 0.4, rel=1e-5)
    assert model.loss_weights["conflict"] == 1.0
    assert float(total) == pytest.approx(float(model.task_loss(out, batch) + aux["conflict"]), rel=1e-5)
    agree, feats = _fixed_evidence("ecml", [E_A, E_A])
    with torch.no_grad():
        aux = agree.auxiliary_losses(agree(feats), batch)
    assert float(aux["conflict"]) == pytest.approx(0.0, abs=1e-7)


def _conflicting_views(n=240, seed=0):
    """View a carries the class, view b carries it for half the rows and a wrong class otherwise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    wrong = (y + 1 + torch.randint(0, 2, (n,), generator=g)) % 3
    yb = torch.where(torch.rand(n, generator=g) < 0.5, y, wrong)
    a = torch.nn.functional.one_hot(y, 3).float() * 2 + torch.randn(n, 3, generator=g) * 0.5
    b = torch.nn.functional.one_hot(yb, 3).float() * 2 + torch.randn(n, 3, generator=g) * 0.5
    return TensorSplit({"a": a, "b": b}, y, torch.arange(n))


def _degree(model, data):
    from pmrfusion.objectives.evidential import conflictive_degree_loss

    model.eval()
    with torch.no_grad():
        return float(conflictive_degree_loss(model(data.features).extras["alpha"]))


def test_ecml_conflict_loss_drives_training():
    """Non-zero, reaches the evidence nets, and training with gamma = 1 leaves views less conflicting
    than gamma = 0 (the same seed otherwise)."""
    data = _conflicting_views()
    seed_everything(0)
    model = build_method("ecml", {"a": 3, "b": 3}, 3)
    batch = Batch(data.features, torch.ones(len(data), 2, dtype=torch.bool), data.labels, data.index)
    out = model(data.features)
    conflict = model.auxiliary_losses(out, batch)["conflict"]
    assert float(conflict.detach()) > 0
    conflict.backward()
    assert all(float(p.grad.abs().sum()) > 0 for p in model.nets.parameters())
    degrees, states = {}, {}
    for gamma in (1.0, 0.0):
        seed_everything(0)
        m = build_method("ecml", {"a": 3, "b": 3}, 3, gamma=gamma)
        res = train(m, data, None, TrainConfig(epochs=15, batch_size=40, lr=1e-2))
        degrees[gamma], states[gamma] = _degree(m, data), m.state_dict()
        assert res.history[0]["conflict"] > 0
    assert degrees[1.0] < 0.9 * degrees[0.0], degrees
    assert any(not torch.equal(states[1.0][k], states[0.0][k]) for k in states[1.0])
