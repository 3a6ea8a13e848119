"""Optimizer specs for named parameter groups."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pmrfusion.errors import PMRFusionError


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

    def build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if self.kind == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.kind == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        raise PMRFusionError(f"unknown optimizer '{self.kind}': use 'adamw' or 'sgd'")
