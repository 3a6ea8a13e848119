"""QMF: energy weights, ranking regulariser (both modes), history, end-to-end floor."""

import math

import pytest
import torch

from pmrfusion.data.loaders import default_data_root, load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.methods import build_method
from pmrfusion.objectives.qmf_ranking import LossHistory, energy, energy_weights, ranking_loss
from pmrfusion.train import TrainConfig, predict, seed_everything, train

torch.set_num_threads(1)


def test_energy_weights_hand_computed():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    assert torch.allclose(energy(logits), -torch.tensor([math.log(2.0), math.log(4.0)]))
    # official code: logsumexp(z) / 10  == alpha=-0.1, beta=0 on the energy
    w = energy_weights(logits)
    assert torch.allclose(w, torch.tensor([math.log(2.0), math.log(4.0)]) / 10)
    w = energy_weights(logits, alpha=-0.5, beta=1.0, temperature=2.0)
    lse = torch.logsumexp(logits / 2.0, -1) * 2.0
    assert torch.allclose(w, 0.5 * lse + 1.0)


def test_ranking_code_mode_margin_is_slack():
    kappa = torch.tensor([1.0, 0.0])  # row 0 has the larger historical loss
    # pairs: (0, 1) and (1, 0) by the cyclic roll; |gap| = 1 acts as slack
    assert float(ranking_loss(torch.tensor([1.4, 0.5]), kappa, "code")) == pytest.approx(0.0)
    assert float(ranking_loss(torch.tensor([1.6, 0.5]), kappa, "code")) == pytest.approx(0.1, abs=1e-6)
    assert float(ranking_loss(torch.tensor([0.7, 0.7]), kappa, "code")) == 0.0


def test_ranking_paper_mode_margin_is_a_gap():
    kappa = torch.tensor([1.0, 0.0])
    # t = +1 for (0, 1): relu((1.4 - 0.5) + 1) = 1.9; (1, 0) symmetric -> mean 1.9
    assert float(ranking_loss(torch.tensor([1.4, 0.5]), kappa, "paper")) == pytest.approx(1.9)
    # correctly ordered by more than the gap: no loss
    assert float(ranking_loss(torch.tensor([0.2, 1.5]), kappa, "paper")) == pytest.approx(0.0)
    # ordered, but by less than the gap: penalised (code mode would not be)
    c = torch.tensor([0.5, 0.8])
    assert float(ranking_loss(c, kappa, "paper")) == pytest.approx(0.7)
    assert float(ranking_loss(c, kappa, "code")) == 0.0
    # ties in history: no loss in either mode
    assert float(ranking_loss(torch.tensor([3.0, 0.0, 1.0]), torch.zeros(3), "paper")) == 0.0


def test_ranking_all_pairs_three_rows():
    c = torch.tensor([0.0, 1.0, 2.0])
    k = torch.tensor([0.0, 0.5, 1.0])  # perfectly wrong order: higher loss, higher weight
    # paper: pairs (i<j) each relu(dc*sign(dk)... ) computed by hand: (0,1): relu(-1*(-1)+0.5)=1.5,
    # (0,2): relu(2+1)=3, (1,2): relu(1+0.5)=1.5; symmetric -> mean over 6 ordered = 2.0
    assert float(ranking_loss(c, k, "paper")) == pytest.approx(2.0)
    # code: (0,1): relu(1-0.5)=0.5; (1,2): 0.5; (2,0): t=+1, relu(2-1)=1 -> mean 2/3
    assert float(ranking_loss(c, k, "code")) == pytest.approx(2.0 / 3.0)


def test_history_modes_and_guard():
    h = LossHistory(1)
    idx = torch.tensor([0, 1])
    # all equal: max == min -> zeros, no NaN
    h.update(0, idx, torch.tensor([0.5, 0.5]))
    for mode in ("paper", "code"):
        assert torch.equal(h.kappa(0, idx, mode), torch.zeros(2))
    h.update(0, torch.tensor([0]), torch.tensor([0.5]))
    h.update(0, torch.tensor([1, 2]), torch.tensor([2.5, 0.0]))  # row 2 only seen with 0 loss
    h.update(0, torch.tensor([0]), torch.tensor([0.5]))
    # totals [1.5, 3.0, 0.0]; means [0.5, 1.5, 0.0]
    rows = torch.tensor([0, 1, 2, 5])  # row 5 never seen (buffer grows)
    code = h.kappa(0, rows, "code")
    assert torch.allclose(code, torch.tensor([0.5, 1.0, 0.0, 0.0]))
    paper = h.kappa(0, rows, "paper")
    assert torch.allclose(paper, torch.tensor([1 / 3, 1.0, 0.0, 0.0]))
    assert h.size < 6  # reading row 5 did not grow the buffer


def test_history_by_row_id_survives_shuffling():
    g = torch.Generator().manual_seed(0)
    losses = torch.rand(50, generator=g)
    rows = torch.arange(100, 150)
    a, b = LossHistory(1), LossHistory(1, 10)
    a.update(0, rows, losses)
    perm = torch.randperm(50, generator=g)
    for chunk in perm.split(7):  # shuffled mini-batches
        b.update(0, rows[chunk], losses[chunk])
    assert torch.allclose(a.total[0, 100:150], b.total[0, 100:150])
    assert torch.allclose(a.kappa(0, rows[perm], "paper"), b.kappa(0, rows[perm], "paper"))
    # state_dict round trip into a differently sized buffer
    c = LossHistory(1, 3)
    c.load_state_dict(b.state_dict())
    assert torch.equal(c.total, b.total)


def _tiny_batch(M=2, B=6, d=5, K=3, seed=0):
    from pmrfusion.types import Batch

    g = torch.Generator().manual_seed(seed)
    feats = {f"m{i}": torch.randn(B, d, generator=g) for i in range(M)}
    return Batch(
        feats,
        torch.ones(B, M, dtype=torch.bool),
        torch.randint(0, K, (B,), generator=g),
        torch.arange(10, 10 + B),
    )


def test_history_updates_only_in_training():
    b = _tiny_batch()
    model = build_method("qmf", {"m0": 5, "m1": 5}, 3, hidden=8)
    model.eval()
    model.auxiliary_losses(model(b.features, b.present), b)
    assert float(model.history.count.sum()) == 0.0
    model.train()
    model.auxiliary_losses(model(b.features, b.present), b)
    assert float(model.history.count.sum()) == 2 * 6


def test_modes_differ_in_detach_and_absent_weight_zero():
    b = _tiny_batch()
    for mode, detached in (("code", True), ("paper", False)):
        model = build_method("qmf", {"m0": 5, "m1": 5}, 3, hidden=8, mode=mode)
        out = model(b.features, b.present)
        confidence = out.extras["confidence:m0"]  # the energy weight before the presence mask
        g = torch.autograd.grad(out.logits.sum(), confidence, allow_unused=True)[0]
        assert (g is None) == detached
    model = build_method("qmf", {"m0": 5, "m1": 5}, 3, hidden=8)
    model.eval()
    present = torch.tensor([[True, False]] * 6)
    out = model(b.features, present)
    assert torch.allclose(out.logits, out.weights["m0"][:, None] * out.modality_logits["m0"])


def _real():
    if default_data_root() is None:
        pytest.skip("shared data not present")
    return prepare(load_dataset("cub"))


@pytest.mark.parametrize("mode", ["paper", "code"])
def test_gradients_finite_on_real_batch(mode):
    from pmrfusion.train.trainer import total_loss

    p = _real()
    model = build_method("qmf", p.dims, p.num_classes, mode=mode)
    model.train()
    for _ in range(2):  # second step has a non-trivial history
        loss, parts = total_loss(model, p.train.batch(torch.arange(32)))
        model.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        for prm in model.parameters():
            assert prm.grad is None or torch.isfinite(prm.grad).all()


def test_qmf_trains_on_handwritten():
    p = prepare(load_dataset("handwritten"))
    seed_everything(0)
    model = build_method("qmf", p.dims, p.num_classes)
    train(model, p.train, p.val, TrainConfig(epochs=6, patience=6))
    acc = float((predict(model, p.test.features).argmax(-1) == p.test.labels).float().mean())
    assert acc >= 0.9


def test_analysis_weights_and_pearson():
    from pmrfusion.analysis.weights_analysis import pearson, weights_and_losses

    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    b = _tiny_batch()
    for name in ("qmf", "late"):  # late falls back to the max softmax probability
        model = build_method(name, {"m0": 5, "m1": 5}, 3, hidden=8)
        w, loss = weights_and_losses(model, b.features, b.present, b.labels)
        assert set(w) == {"m0", "m1"} and w["m0"].shape == (6,) and loss["m1"].shape == (6,)


def test_reading_history_never_grows_it():
    h = LossHistory(1, 4)
    h.update(0, torch.tensor([0, 1]), torch.tensor([1.0, 3.0]))
    k = h.kappa(0, torch.tensor([0, 1, 9]), "code")  # row 9 is past the buffer
    assert h.size == 4
    assert torch.allclose(k, torch.tensor([1 / 3, 1.0, 0.0]))
    assert torch.allclose(h.kappa(0, torch.tensor([0, 1, 9]), "paper"), torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(LossHistory(2).kappa(1, torch.tensor([3]), "paper"), torch.zeros(1))
