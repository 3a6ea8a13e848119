"""The fusion-model base class and the method registry (core types: `pmrfusion.types`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.optim import OptimizerSpec
from pmrfusion.tasks import check_regression_method
from pmrfusion.types import Batch, ModelOutput


class FusionModel(nn.Module):
    """Base for every registered method.

    Subclasses implement `forward(features, present) -> ModelOutput`. The trainer adds
    `sum_i loss_weights[i] * aux_i` from `auxiliary_losses` to the task loss.
    """

    modalities: list[str]
    loss_weights: dict[str, float]

    def __init__(self, modalities: list[str]):
        super().__init__()
        self.modalities = list(modalities)
        self.loss_weights = {}
        # group name -> optimizer spec the method wants by default (see TrainConfig)
        self.default_group_optimizers: dict[str, OptimizerSpec] = {}

    def auxiliary_losses(self, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        """Unweighted auxiliary losses for this batch (default: those the forward pass made)."""
        return output.aux_losses

    def task_loss(self, output: ModelOutput, batch: Batch) -> Tensor:
        """The task loss the trainer minimises (default: cross-entropy of the fused logits)."""
        return F.cross_entropy(output.logits, batch.labels)

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the trainer before each training epoch (1-based); default: nothing."""

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups that may get their own optimizer (e.g. {"pmr": [...]})."""
        return {}

    def views(self, features: dict[str, Tensor]) -> list[Tensor]:
        missing = [m for m in self.modalities if m not in features]
        if missing:
            raise PMRFusionError(f"input lacks modalities {missing}; model expects {self.modalities}")
        return [features[m] for m in self.modalities]


@dataclass
class MethodSpec:
    name: str
    config_cls: type
    builder: Callable[[dict[str, int], int, Any], FusionModel]
    description: str


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, config_cls: type, description: str):
    """Decorator: register `builder(dims, num_classes, config) -> FusionModel` under `name`."""

    def deco(builder):
        _REGISTRY[name] = MethodSpec(name, config_cls, builder, description)
        return builder

    return deco


def available_methods() -> dict[str, MethodSpec]:
    return dict(_REGISTRY)


def method_config(name: str, **config: Any):
    """The typed config of method `name`, with overrides checked against its fields."""
    if name not in _REGISTRY:
        raise PMRFusionError(f"unknown method '{name}': use one of {', '.join(sorted(_REGISTRY))}")
    cls = _REGISTRY[name].config_cls
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise PMRFusionError(
            f"method '{name}' has no option(s) {unknown}; options: {', '.join(sorted(fields))}"
        )
    return cls(**config)


def build_method(name: str, dims: dict[str, int], num_classes: int, **config: Any) -> FusionModel:
    """Build a registered method, e.g. `build_method("rg-concat", {"img": 1024, "txt": 300}, 10)`.

    `num_classes=1` builds a regression model (one real output); classification-only methods refuse.
    """
    cfg = method_config(name, **config)
    if len(dims) < 2:
        raise PMRFusionError(f"method '{name}' needs at least 2 modalities, got {len(dims)}")
    bad = {m: d for m, d in dims.items() if int(d) < 1}
    if bad:
        raise PMRFusionError(f"modality dimensions must be >= 1, got {bad}")
    if num_classes == 1:  # regression: one real output (see pmrfusion.tasks)
        check_regression_method(name)
    elif num_classes < 2:
        raise PMRFusionError(f"need at least 2 classes (or 1 output for regression), got {num_classes}")
    return _REGISTRY[name].builder(dict(dims), int(num_classes), cfg)


def zero_absent(
    features: dict[str, Tensor], present: Tensor | None, modalities: list[str]
) -> dict[str, Tensor]:
    """Absent modalities as zeros in *scaled* space: mean imputation (protocol "missing_mean").

    The papers' zero feature in original units is `pmrfusion.data.absent.fill_absent` with the
    split's `absent_fill`; no method zeroes absent inputs itself (they get `present` instead).
    """
    if present is None:
        return features
    out = {}
    for i, m in enumerate(modalities):
        out[m] = features[m] * present[:, i : i + 1].to(features[m].dtype)
    return out


__all__ = [
    "Batch",
    "FusionModel",
    "MethodSpec",
    "ModelOutput",
    "available_methods",
    "build_method",
    "method_config",
    "register_method",
    "zero_absent",
]
