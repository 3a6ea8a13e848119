"""Precision: bf16 / float16 autocast for every method on CPU, float32-marked losses stay float32,
and a bf16 run's accuracy within a stated tolerance of float32."""

from __future__ import annotations

import pytest
import torch

from pmrfusion.bench.runner import fit_method
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import available_methods, build_method
from pmrfusion.objectives.preservation import preservation_loss
from pmrfusion.precision import autocast
from pmrfusion.train.trainer import TrainConfig, predict, total_loss
from pmrfusion.types import Batch

CPU = torch.device("cpu")
LOSS_TOLERANCE = 0.05  # relative difference of one batch's total loss, bf16 autocast vs float32
ACCURACY_TOLERANCE = 0.02  # test accuracy after training, bf16 vs float32 (Handwritten, 3 epochs)


def _batch(n: int = 32) -> Batch:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    a, b = torch.randn(n, 12, generator=g), torch.randn(n, 8, generator=g)
    feats = {"a": a + y[:, None], "b": b - y[:, None]}
    return Batch(feats, torch.ones(n, 2, dtype=torch.bool), y, torch.arange(n))


@pytest.mark.parametrize("method", sorted(available_methods()))
def test_every_method_trains_under_bf16_autocast_close_to_float32(method):
    torch.manual_seed(0)
    model = build_method(method, {"a": 12, "b": 8}, 3)
    model.train()
    batch = _batch()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)  # the same dropout masks in both passes
    exact = float(total_loss(model, batch)[0].detach())
    model.load_state_dict(state)
    torch.manual_seed(1)
    with autocast(CPU, "bf16"):
        low, _ = total_loss(model, batch)
    assert low.dtype == torch.float32 and torch.isfinite(low)
    assert abs(float(low.detach()) - exact) <= LOSS_TOLERANCE * max(1.0, abs(exact)), (low, exact)
    low.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_float32_losses_stay_float32_under_autocast():
    v = [torch.randn(4, 6).bfloat16(), torch.randn(4, 3).bfloat16()]
    r = [x + 0.1 for x in v]
    with autocast(CPU, "bf16"):
        for kind in ("strict", "relaxed"):
            assert preservation_loss(kind, v, r).dtype == torch.float32
    assert preservation_loss("strict", v, r).dtype == torch.bfloat16  # outside autocast: untouched


def test_bf16_and_float16_runs_reach_float32_accuracy():
    p = prepare(load_dataset("handwritten"), 0.15, 0)
    acc = {}
    for precision in ("32", "bf16", "16-mixed"):
        model, result = fit_method("sg-concat", p, 0, {}, TrainConfig(epochs=3, precision=precision))
        assert all(torch.isfinite(torch.tensor(h["task"])) for h in result.history)
        acc[precision] = float((predict(model, p.test.features).argmax(-1) == p.test.labels).float().mean())
    assert abs(acc["bf16"] - acc["32"]) <= ACCURACY_TOLERANCE, acc
    assert abs(acc["16-mixed"] - acc["32"]) <= ACCURACY_TOLERANCE, acc


def test_unknown_precision_is_one_error():
    with pytest.raises(PMRFusionError, match="--precision must be one of 32, bf16, 16-mixed"):
        TrainConfig(precision="fp8")
