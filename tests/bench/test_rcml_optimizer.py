"""The RCML runner trains as RCML's (and TMC's) official code: torch.optim.Adam with weight decay
1e-5 added to the gradient (L2), not AdamW's decoupled decay."""

import pytest
import torch

from pmrfusion.bench.rcml import RCMLSpec
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import build_method
from pmrfusion.train.trainer import TrainConfig, build_optimizers


def _step_with_zero_gradient(cfg: TrainConfig) -> float:
    """One step of the main optimizer on a weight 2.0 whose gradient is 0: only weight decay acts."""
    torch.manual_seed(0)
    model = build_method("concat", {"a": 3, "b": 2}, 2)
    (opt,) = build_optimizers(model, cfg)
    w = next(model.parameters())
    with torch.no_grad():
        w.fill_(2.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    return float(w.detach()[0, 0])


def test_rcml_runner_uses_adam_with_l2_weight_decay_for_every_method():
    spec = RCMLSpec(methods=["tmc", "ecml", "concat"], runs=1, epochs=1)
    for m in spec.methods:
        tc = spec.train_config(m, 0)
        assert tc.optimizer == "adam" and tc.weight_decay == 1e-5
    model = build_method("concat", {"a": 3, "b": 2}, 2)
    (opt,) = build_optimizers(model, spec.train_config("concat", 0))
    assert type(opt) is torch.optim.Adam and opt.defaults["weight_decay"] == 1e-5


def test_adam_l2_and_adamw_decoupled_decay_differ_as_their_formulas_say():
    lr, wd = 0.1, 1e-5
    # Adam: g' = 0 + wd * w; the first step is lr * g' / (|g'| + eps) (bias-corrected moments)
    g = wd * 2.0
    adam = _step_with_zero_gradient(TrainConfig(lr=lr, weight_decay=wd, optimizer="adam"))
    assert adam == pytest.approx(2.0 - lr * g / (g + 1e-8), rel=1e-6)
    # AdamW: the moments stay 0; w <- w (1 - lr wd)
    adamw = _step_with_zero_gradient(TrainConfig(lr=lr, weight_decay=wd))
    assert adamw == pytest.approx(2.0 * (1 - lr * wd), rel=1e-7)


def test_an_unknown_main_optimizer_is_one_error():
    with pytest.raises(PMRFusionError, match="unknown optimizer 'sgdw': use one of adamw, adam"):
        TrainConfig(optimizer="sgdw")
