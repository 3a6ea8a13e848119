"""Optimizers: one factory (`make_optimizer`) with a choice of PyTorch kernel, and the specs of
named parameter groups (`OptimizerSpec`).

Kernels (`OPTIMIZER_KERNELS`): "single" is PyTorch's per-tensor for-loop (`foreach=False`, what
the trainer ran before kernels were selectable on a CPU); "foreach" groups the tensors into a few
multi-tensor ops; "fused" is one kernel over every tensor (`fused=True`); "auto" is "fused" where
PyTorch has fused kernels for every parameter's device (`FUSED_DEVICES`), else "foreach". Fused
and foreach compute the same update as "single" up to the last bits of float32 rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from pmrfusion.errors import PMRFusionError

OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}
OPTIMIZER_KERNELS = ("auto", "fused", "foreach", "single")
FUSED_DEVICES = frozenset({"cpu", "cuda"})  # fused AdamW / Adam / SGD in torch >= 2.4


def check_kernel(kernel: object) -> str:
    """`kernel` if it is one of OPTIMIZER_KERNELS, else one PMRFusionError line."""
    if kernel not in OPTIMIZER_KERNELS:
        names = ", ".join(OPTIMIZER_KERNELS)
        raise PMRFusionError(f"unknown optimizer kernel {kernel!r}: use one of {names}")
    return str(kernel)


def resolve_kernel(kernel: str, params: list[nn.Parameter]) -> str:
    """The kernel "auto" stands for on these parameters ("fused" or "foreach"); others unchanged."""
    check_kernel(kernel)
    if kernel != "auto":
        return kernel
    fusable = all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in params)
    return "fused" if fusable else "foreach"


def kernel_options(kernel: str, params: list[nn.Parameter]) -> dict[str, bool]:
    """The `foreach` / `fused` keyword arguments of a torch optimizer for `kernel`."""
    chosen = resolve_kernel(kernel, params)
    if chosen == "fused":
        return {"fused": True}
    return {"foreach": chosen == "foreach"}


def make_optimizer(
    name: str,
    params: Iterable[nn.Parameter],
    lr: float,
    weight_decay: float,
    kernel: str = "auto",
    momentum: float = 0.0,
) -> torch.optim.Optimizer:
    """A torch optimizer "adamw", "adam" or "sgd" (`momentum` is SGD's) running `kernel`."""
    if name not in OPTIMIZER_CLASSES:
        raise PMRFusionError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZER_CLASSES)}")
    params = list(params)
    flags = kernel_options(kernel, params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **flags)
    return OPTIMIZER_CLASSES[name](params, lr=lr, weight_decay=weight_decay, **flags)


@dataclass
class OptimizerSpec:
    """An optimizer for a named parameter group: 'adamw' or 'sgd'.

    `additional=False`: the group is trained by this optimizer instead of the main one;
    `additional=True`: the group stays in the main optimizer and this one steps it as well.
    """

    kind: str = "sgd"
    lr: float = 2.5e-4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    additional: bool = False

    def build(self, params: list[nn.Parameter], kernel: str = "single") -> torch.optim.Optimizer:
        if self.kind not in ("sgd", "adamw"):
            raise PMRFusionError(f"unknown optimizer '{self.kind}': use 'adamw' or 'sgd'")
        momentum = self.momentum if self.kind == "sgd" else 0.0
        return make_optimizer(self.kind, params, self.lr, self.weight_decay, kernel, momentum)


__all__ = [
    "FUSED_DEVICES",
    "OPTIMIZER_CLASSES",
    "OPTIMIZER_KERNELS",
    "OptimizerSpec",
    "check_kernel",
    "kernel_options",
    "make_optimizer",
    "resolve_kernel",
]
