"""Every registered method (from the registry, not a hand-kept list): builds on M = 2, 3 and 6
modalities with unequal dims, forwards, gives a finite training loss, and backward reaches its
parameters with finite gradients."""

import pytest
import torch

from pmrfusion.bench.runner import overrides_for
from pmrfusion.methods import available_methods, build_method
from pmrfusion.train.trainer import total_loss
from pmrfusion.types import Batch

torch.set_num_threads(1)

DIMS = {
    2: {"a": 12, "b": 7},
    3: {"a": 12, "b": 7, "c": 9},
    6: {"a": 12, "b": 7, "c": 9, "d": 5, "e": 16, "f": 6},
}
SMALL = dict(hidden=16, embed_dim=8, proj_hidden=0, token_dim=8, heads=2, depth=1)


@pytest.mark.parametrize("num_modalities", [2, 3, 6])
@pytest.mark.parametrize("name", sorted(available_methods()))
def test_method_builds_forwards_and_backpropagates(name, num_modalities):
    dims = DIMS[num_modalities]
    torch.manual_seed(0)
    model = build_method(name, dims, 3, **overrides_for(name, SMALL))
    feats = {m: torch.randn(12, d) for m, d in dims.items()}
    present = torch.ones(12, num_modalities, dtype=torch.bool)
    labels = torch.arange(12) % 3
    model.train()
    out = model(feats, present)
    assert out.logits.shape == (12, 3)
    for k, v in out.aux_losses.items():
        assert v.ndim == 0 and torch.isfinite(v), k
    loss, _ = total_loss(model, Batch(feats, present, labels, torch.arange(12)))
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is None or torch.isfinite(g).all() for g in grads)
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > len(grads) // 2
    if "cmmp" in name:
        assert set(out.embeddings) == set(dims) and "contrastive" in out.aux_losses
    if name.startswith(("sg-", "rg-")):
        assert "preserve" in out.aux_losses
