"""Per-step overhead removed without changing what is computed: optimizer kernels, no host reads
inside the step, one-pass validation."""

import pytest
import torch

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import build_method
from pmrfusion.optim import OptimizerSpec, make_optimizer, resolve_kernel
from pmrfusion.train import trainer
from pmrfusion.train.trainer import (
    TrainConfig,
    build_optimizers,
    epoch_means,
    predict_split,
    seed_everything,
    train,
    validation_logits,
)

SHAPES = [(33, 17), (17,), (5, 3, 2)]


def _run(name: str, kernel: str | None, steps: int = 4, momentum: float = 0.0) -> list[torch.Tensor]:
    """Parameters after `steps` seeded steps (kernel None: torch's class with its defaults)."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in SHAPES]
    if kernel is None:
        cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}[name]
        extra = {"momentum": momentum} if name == "sgd" else {}
        opt = cls(params, lr=1e-2, weight_decay=1e-2, **extra)
    else:
        opt = make_optimizer(name, params, 1e-2, 1e-2, kernel, momentum)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("name,momentum", [("adamw", 0.0), ("adam", 0.0), ("sgd", 0.9)])
def test_kernels_give_the_single_kernels_update(name, momentum):
    single = _run(name, "single", momentum=momentum)
    # "single" is exactly the update torch's class made with its defaults on a CPU (the old trainer)
    assert all(torch.equal(a, b) for a, b in zip(single, _run(name, None, momentum=momentum)))
    for kernel in ("foreach", "fused", "auto"):
        other = _run(name, kernel, momentum=momentum)
        assert all(torch.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(single, other)), kernel
        assert all(not torch.equal(a, p) for a, p in zip(other, _run(name, kernel, 0, momentum)))


def test_auto_is_fused_on_cpu_and_foreach_elsewhere():
    assert resolve_kernel("auto", [torch.nn.Parameter(torch.zeros(2))]) == "fused"
    assert resolve_kernel("auto", [torch.nn.Parameter(torch.zeros(2, device="meta"))]) == "foreach"
    model = build_method("concat", {"a": 3, "b": 2}, 2)
    (opt,) = build_optimizers(model, TrainConfig())
    assert opt.defaults["fused"] is True
    (opt,) = build_optimizers(model, TrainConfig(optimizer_kernel="single"))
    assert not opt.defaults["fused"] and opt.defaults["foreach"] is False


def test_pmr_second_optimizer_runs_the_same_kernel():
    model = build_method("sg-concat", {"a": 6, "b": 4}, 3)
    main, extra = build_optimizers(model, TrainConfig())
    assert type(extra) is torch.optim.SGD and extra.defaults["fused"] is True
    assert OptimizerSpec().build(list(model.pmr.parameters())).defaults["foreach"] is False  # default single


def test_unknown_kernel_is_one_error():
    with pytest.raises(PMRFusionError, match="unknown optimizer kernel 'fast': use one of auto, fused"):
        TrainConfig(optimizer_kernel="fast")
    with pytest.raises(PMRFusionError, match="unknown optimizer 'lion'"):
        make_optimizer("lion", [torch.nn.Parameter(torch.zeros(1))], 1e-3, 0.0)


def _toy_split(n: int, eval_batch_size: int = 4096, seed: int = 0) -> TensorSplit:
    gen = torch.Generator().manual_seed(seed)
    feats = {"a": torch.randn(n, 6, generator=gen), "b": torch.randn(n, 4, generator=gen)}
    labels = torch.randint(0, 3, (n,), generator=gen)
    return TensorSplit(feats, labels, torch.arange(n), eval_batch_size=eval_batch_size)


def test_epoch_means_equal_the_python_float_sums():
    values = [0.1, 0.2, 0.3, 1e-17]
    sums: dict[str, torch.Tensor] = {}
    for v in values:
        sums["task"] = sums.get("task", 0.0) + torch.tensor(v, dtype=torch.float32).double()
    expected = 0.0
    for v in values:
        expected += float(torch.tensor(v, dtype=torch.float32))
    assert epoch_means(sums, len(values)) == {"task": expected / len(values)}
    assert epoch_means({}, 0) == {}


def test_no_host_read_inside_the_step(monkeypatch):
    """Ten steps an epoch, two epochs: the loss terms are read from the device twice (one
    `tolist` per epoch), never by `.item()` or `float()` of a tensor."""
    reads = {"item": 0, "float": 0, "tolist": 0}
    real = {"item": torch.Tensor.item, "float": torch.Tensor.__float__, "tolist": torch.Tensor.tolist}

    def counted(kind):
        def read(self, *args):
            reads[kind] += 1
            return real[kind](self, *args)

        return read

    seed_everything(0)
    model = build_method("sg-concat", {"a": 6, "b": 4}, 3)
    data = _toy_split(80)
    for kind, attr in (("item", "item"), ("float", "__float__"), ("tolist", "tolist")):
        monkeypatch.setattr(torch.Tensor, attr, counted(kind))
    result = train(model, data, None, TrainConfig(epochs=2, batch_size=8, patience=5))
    monkeypatch.undo()
    assert reads == {"item": 0, "float": 0, "tolist": 2}
    assert len(result.history) == 2 and set(result.history[0]) == {"task", "preserve", "epoch"}


def test_one_pass_validation_equals_per_batch_validation(monkeypatch):
    seed_everything(0)
    model = build_method("late", {"a": 6, "b": 4}, 3)
    model.eval()
    val = _toy_split(50, eval_batch_size=7, seed=1)
    per_batch = predict_split(model, val)  # 8 batches of 7 rows
    assert trainer.validation_rows_per_pass(val) >= 50
    one_pass = validation_logits(model, val)
    assert one_pass.shape == (50, 3) and torch.allclose(one_pass, per_batch, rtol=0, atol=1e-6)
    whole = _toy_split(50, eval_batch_size=4096, seed=1)
    assert torch.equal(validation_logits(model, whole), predict_split(model, whole))  # same single pass
    # above the size threshold the split is chunked (at least eval_batch_size rows a chunk)
    monkeypatch.setattr(trainer, "VALIDATION_ONE_PASS_ELEMENTS", 100)
    assert trainer.validation_rows_per_pass(val) == 10
    assert torch.allclose(validation_logits(model, val), per_batch, rtol=0, atol=1e-6)
