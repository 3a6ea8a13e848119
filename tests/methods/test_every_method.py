"""Every registered method (from the registry): builds on M=2 and M=3 with unequal dims,
forwards, gives a finite training loss, and backward gives gradients."""

import pytest
import torch

from pmrfusion.methods import available_methods, build_method
from pmrfusion.train.trainer import total_loss
from pmrfusion.types import Batch

torch.set_num_threads(1)

DIMS = {2: {"a": 7, "b": 12}, 3: {"a": 7, "b": 12, "c": 5}}


@pytest.mark.parametrize("num_modalities", [2, 3])
@pytest.mark.parametrize("name", sorted(available_methods()))
def test_method_builds_forwards_and_backpropagates(name, num_modalities):
    dims = DIMS[num_modalities]
    torch.manual_seed(0)
    try:
        model = build_method(name, dims, 4)
    except Exception as e:  # a method restricted to 2 modalities must say so clearly
        if num_modalities == 3:
            pytest.skip(f"{name} does not build on 3 modalities: {e}")
        raise
    feats = {m: torch.randn(16, d) for m, d in dims.items()}
    present = torch.ones(16, num_modalities, dtype=torch.bool)
    labels = torch.arange(16) % 4
    model.train()
    assert model(feats, present).logits.shape == (16, 4)
    loss, _ = total_loss(model, Batch(feats, present, labels, torch.arange(16)))
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
