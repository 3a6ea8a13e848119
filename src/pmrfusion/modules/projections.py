"""CLIP-style per-modality projections into a shared space with a learned temperature."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Projection(nn.Module):
    """in_dim -> embed_dim: linear (hidden=0) or Linear-GELU-Linear."""

    def __init__(self, in_dim: int, embed_dim: int, hidden: int = 0):
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))
        else:
            self.net = nn.Linear(in_dim, embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ContrastiveProjector(nn.Module):
    """One projection per modality and a learned log logit-scale (CLIP init 1/0.07, cap 100)."""

    def __init__(self, in_dims: Sequence[int], embed_dim: int, hidden: int = 0, init_temp: float = 0.07):
        super().__init__()
        self.projections = nn.ModuleList(Projection(d, embed_dim, hidden) for d in in_dims)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temp)))

    @property
    def logit_scale(self) -> Tensor:
        return self.log_scale.clamp(max=math.log(100.0)).exp()

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        return [p(x) for p, x in zip(self.projections, xs)]


__all__ = ["ContrastiveProjector", "Projection"]
