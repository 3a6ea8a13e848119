"""`equal_dims`: the generic option that maps every wider modality to the narrowest width (PMR 5.2.1)."""

import pytest
import torch

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import EqualDimsModel, available_methods, build_method, method_config
from pmrfusion.methods.base import estimate_parameters, full_method_config, parse_overrides, parse_variant
from pmrfusion.train.trainer import TrainConfig, build_optimizers, seed_everything, total_loss, train
from pmrfusion.types import Batch

DIMS = {"a": 12, "b": 5, "c": 8}


def _batch(n: int = 6, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(n, d, generator=gen) for m, d in DIMS.items()}
    return Batch(feats, None, torch.arange(n) % 3, torch.arange(n))


def _seen_widths(model: EqualDimsModel, batch: Batch, present=None) -> dict[str, int]:
    seen: dict[str, int] = {}
    hook = model.method.register_forward_pre_hook(
        lambda _mod, args: seen.update({m: x.shape[1] for m, x in args[0].items()})
    )
    model(batch.features, present)
    hook.remove()
    return seen


@pytest.mark.parametrize("name", ["sg-cmmp", "rg-concat"])
def test_the_method_sees_the_narrowest_width_only(name):
    model = build_method(name, DIMS, 3, equal_dims=True)
    assert isinstance(model, EqualDimsModel)
    assert sorted(model.to_width) == ["a", "c"]  # b, the narrowest, passes unchanged
    assert {m: lin.weight.shape for m, lin in model.to_width.items()} == {
        "a": torch.Size([5, 12]),
        "c": torch.Size([5, 8]),
    }
    present = torch.tensor([[True, True, False]] * 6)
    assert _seen_widths(model, _batch(), present) == {"a": 5, "b": 5, "c": 5}
    assert model.modalities == ["a", "b", "c"]
    assert estimate_parameters(name, DIMS, 3, equal_dims=True) == sum(p.numel() for p in model.parameters())


def test_option_off_leaves_the_model_unchanged():
    spec = available_methods()["sg-concat"]
    seed_everything(3)
    native = spec.builder(dict(DIMS), 3, method_config("sg-concat"))
    for config in ({}, {"equal_dims": False}):
        seed_everything(3)
        model = build_method("sg-concat", DIMS, 3, **config)
        assert type(model) is type(native)
        state, ref = model.state_dict(), native.state_dict()
        assert list(state) == list(ref)
        assert all(torch.equal(state[k], ref[k]) for k in ref)
    assert full_method_config("sg-concat") == full_method_config("sg-concat", equal_dims=False)
    assert "equal_dims" not in full_method_config("sg-concat")
    assert full_method_config("sg-concat", equal_dims=True)["equal_dims"] is True


def test_gradients_reach_the_projection_and_training_moves_it():
    seed_everything(0)
    model = build_method("sg-concat", DIMS, 3, equal_dims=True)
    loss, parts = total_loss(model, _batch())
    assert "preserve" in parts  # the method's auxiliary loss still reaches the trainer
    loss.backward()
    for lin in model.to_width.values():
        assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    before = {m: lin.weight.detach().clone() for m, lin in model.to_width.items()}
    b = _batch(30, seed=1)
    train(model, TensorSplit(b.features, b.labels, b.index), None, TrainConfig(epochs=2, batch_size=10))
    assert all(not torch.equal(before[m], model.to_width[m].weight) for m in before)


def test_groups_optimizers_and_embeddings_are_the_methods():
    model = build_method("sg-cmmp", DIMS, 3, equal_dims=True, probe_only=True)
    inner = model.method
    assert model.optimizer_groups().keys() == inner.optimizer_groups().keys() == {"pmr"}
    assert model.default_group_optimizers is inner.default_group_optimizers
    assert model.loss_weights is inner.loss_weights
    assert model.pmr is inner.pmr and model.backend.probe_only is True  # read through the wrapper
    main, pmr_sgd = build_optimizers(model, TrainConfig())
    main_ids = {id(p) for g in main.param_groups for p in g["params"]}
    assert all(id(p) in main_ids for p in model.to_width.parameters())
    assert isinstance(pmr_sgd, torch.optim.SGD)
    out = model(_batch().features, None)
    assert set(out.embeddings) == set(DIMS) and all(e.shape[0] == 6 for e in out.embeddings.values())


def test_option_parsing_and_round_trip():
    assert parse_variant("sg-cmmp[equal_dims=true]") == ("sg-cmmp", {"equal_dims": True})
    assert parse_overrides(["concat", "rg-concat"], ["equal_dims=true"]) == {"equal_dims": True}
    with pytest.raises(PMRFusionError, match="equal_dims='maybe': expected true or false"):
        parse_variant("concat[equal_dims=maybe]")
    with pytest.raises(PMRFusionError, match="expected true or false"):
        build_method("concat", DIMS, 3, equal_dims=1)
    seed_everything(0)
    model = build_method("rg-concat", DIMS, 3, equal_dims=True)
    rebuilt = build_method("rg-concat", DIMS, 3, **full_method_config("rg-concat", equal_dims=True))
    rebuilt.load_state_dict(model.state_dict())  # a checkpoint's config rebuilds the same model
    x = _batch().features
    model.eval(), rebuilt.eval()
    assert torch.equal(model(x, None).logits, rebuilt(x, None).logits)
