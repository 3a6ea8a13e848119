"""tmc / ecml: opinion algebra against hand values, the KL schedule, and a short real-data run."""

import math

import pytest
import torch

from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.rcml import conflictive_test, minmax_whole, prepare_rcml
from pmrfusion.methods import build_method
from pmrfusion.objectives.evidential import (
    annealing_coefficient,
    average_evidence,
    conflictive_degree_loss,
    ds_combine,
    ds_combine_two,
    edl_digamma_loss,
    kl_to_uniform,
    opinion,
)
from pmrfusion.train.trainer import TrainConfig, seed_everything, train
from pmrfusion.types import Batch

A1 = torch.tensor([[3.0, 1.0]])  # b = (1/2, 0), u = 1/2
A2 = torch.tensor([[1.0, 2.0]])  # b = (0, 1/3), u = 2/3


def test_opinion_of_dirichlet():
    b, u = opinion(A1)
    assert torch.allclose(b, torch.tensor([[0.5, 0.0]])) and torch.allclose(u, torch.tensor([0.5]))


def test_dempster_shafer_two_opinions_by_hand():
    # C = 1/2 * 1/3 = 1/6; b = ([1/3, 0] + [0, 1/6]) / (5/6) = (0.4, 0.2); u = (1/3) / (5/6) = 0.4
    # S = K / u = 5, e = b S = (2, 1), alpha = (3, 2)
    fused = ds_combine_two(A1, A2)
    assert torch.allclose(fused, torch.tensor([[3.0, 2.0]]), atol=1e-6)
    b, u = opinion(fused)
    assert torch.allclose(b, torch.tensor([[0.4, 0.2]])) and torch.allclose(u, torch.tensor([0.4]))


def test_dempster_shafer_vacuous_view_is_identity_and_absent_views_are_vacuous():
    vacuous = torch.ones(1, 2)
    assert torch.allclose(ds_combine_two(A1, vacuous), A1)
    stacked = torch.stack([A1, A2, torch.tensor([[5.0, 9.0]])])
    present = torch.tensor([[True, True, False]])
    assert torch.allclose(ds_combine(stacked, present), ds_combine_two(A1, A2))
    assert not torch.allclose(ds_combine(stacked), ds_combine_two(A1, A2))


def test_average_aggregation_by_hand_and_matches_rcml_opinion_form():
    e1, e2, e3 = A1 - 1, A2 - 1, torch.tensor([[4.0, 0.0]])
    fused = average_evidence(torch.stack([e1, e2])) + 1
    assert torch.allclose(fused, torch.tensor([[2.0, 1.5]]))
    # RCML eq.: b = (b1 u2 + b2 u1) / (u1 + u2) = (2/7, 1/7), u = 2 u1 u2 / (u1 + u2) = 4/7
    b, u = opinion(fused)
    assert torch.allclose(b, torch.tensor([[2 / 7, 1 / 7]])) and torch.allclose(u, torch.tensor([4 / 7]))
    # three views fold in order: ((e1 + e2) / 2 + e3) / 2; an absent view is skipped
    three = torch.stack([e1, e2, e3])
    assert torch.allclose(average_evidence(three), ((e1 + e2) / 2 + e3) / 2)
    assert torch.allclose(average_evidence(three, torch.tensor([[True, False, True]])), (e1 + e3) / 2)
    assert torch.allclose(average_evidence(three, torch.tensor([[False, True, False]])), e2)


def test_conflictive_degree_by_hand():
    # p1 = (3/4, 1/4), p2 = (1/3, 2/3): pd = 5/12; (1 - u1)(1 - u2) = 1/6; both orders: 2 * 5/72
    dc = conflictive_degree_loss(torch.stack([A1, A2]))
    assert dc.item() == pytest.approx(5 / 36, abs=1e-6)
    assert conflictive_degree_loss(torch.stack([A1, A1])).item() == pytest.approx(0.0, abs=1e-7)
    assert conflictive_degree_loss(torch.stack([A1, A2]), torch.tensor([[True, False]])).item() == 0.0


def test_kl_and_annealing_schedule():
    assert [annealing_coefficient(e, 50) for e in (1, 25, 50, 120)] == [0.02, 0.5, 1.0, 1.0]
    assert kl_to_uniform(torch.ones(1, 3)).item() == pytest.approx(0.0, abs=1e-6)
    # KL(Beta(2, 1) || U) = log 2 + psi(2) - psi(3) = log 2 - 1/2
    assert kl_to_uniform(torch.tensor([[2.0, 1.0]])).item() == pytest.approx(math.log(2) - 0.5, abs=1e-5)
    y = torch.tensor([0])
    # psi(5) - psi(3) = 1/3 + 1/4; misleading evidence alpha~ = (1, 2)
    assert edl_digamma_loss(torch.tensor([[3.0, 2.0]]), y, 0.0).item() == pytest.approx(7 / 12, abs=1e-5)
    assert edl_digamma_loss(torch.tensor([[3.0, 2.0]]), y, 1.0).item() == pytest.approx(
        7 / 12 + math.log(2) - 0.5, abs=1e-5
    )


def test_trainer_tells_the_epoch_and_the_kl_weight_grows():
    torch.manual_seed(0)
    dims = {"a": 4, "b": 3}
    model = build_method("tmc", dims, 3, annealing_step=10)
    feats = {"a": torch.randn(8, 4), "b": torch.randn(8, 3)}
    batch = Batch(feats, torch.ones(8, 2, dtype=torch.bool), torch.arange(8) % 3, torch.arange(8))
    model.eval()
    out = model(feats, batch.present)
    model.on_epoch_start(1)
    early = model.task_loss(out, batch)
    model.on_epoch_start(10)
    late = model.task_loss(out, batch)
    assert late > early  # same outputs, KL weight 0.1 -> 1
    from pmrfusion.data.tensors import TensorSplit

    split = TensorSplit(feats, batch.labels, batch.index)
    train(model, split, None, TrainConfig(epochs=3, batch_size=4))
    assert model.epoch == 3


@pytest.mark.parametrize("name", ["tmc", "ecml"])
def test_outputs_probabilities_uncertainty_and_missing_views(name):
    torch.manual_seed(0)
    model = build_method(name, {"a": 5, "b": 3, "c": 2}, 4)
    feats = {"a": torch.randn(6, 5), "b": torch.randn(6, 3), "c": torch.randn(6, 2)}
    out = model(feats)
    assert torch.allclose(out.logits.exp().sum(-1), torch.ones(6), atol=1e-5)
    assert out.uncertainty.shape == (6,) and bool(((out.uncertainty > 0) & (out.uncertainty <= 1)).all())
    only_a = torch.tensor([[True, False, False]] * 6)
    alone = model(feats, only_a)
    assert torch.allclose(alone.logits, alone.modality_logits["a"], atol=1e-5)  # absent views add nothing


def _conflict_degree(model, features, rows):
    model.eval()
    with torch.no_grad():
        out = model({m: x[rows] for m, x in features.items()})
    return conflictive_degree_loss(out.extras["alpha"]).item()


def test_ecml_on_handwritten_rcml_protocol_against_late(data_root):
    data = load_dataset("handwritten", data_root)
    scaled = minmax_whole(data.features)
    prep = prepare_rcml(data, 0, scaled)
    conflict = conflictive_test(scaled, data.labels, prep.test.index.numpy(), data.num_classes, 0)
    accs = {}
    for name, lr in (("ecml", 3e-3), ("late", 1e-3)):
        seed_everything(0)
        model = build_method(name, prep.dims, prep.num_classes)
        train(model, prep.train, None, TrainConfig(epochs=10, batch_size=200, lr=lr, weight_decay=1e-5))
        model.eval()
        with torch.no_grad():
            normal = model(prep.test.features)
            conf = model(conflict.features)
        accs[name] = [float((o.logits.argmax(-1) == prep.test.labels).float().mean()) for o in (normal, conf)]
        if name == "ecml":
            assert normal.uncertainty is not None and conf.uncertainty is not None
            # views disagree more on the conflictive test set (RCML's conflictive degree)
            changed = torch.stack(
                [(conflict.features[m] != prep.test.features[m]).any(1) for m in prep.modalities]
            ).any(0)
            assert int(changed.sum()) >= int(0.4 * len(changed))
            after = _conflict_degree(model, conflict.features, changed)
            before = _conflict_degree(model, prep.test.features, changed)
            assert after > 1.05 * before, (after, before)
    assert accs["ecml"][0] > accs["late"][0] - 0.05
    assert accs["ecml"][1] < accs["ecml"][0] - 0.02  # the conflictive set is harder
