"""Classifier heads."""

from __future__ import annotations

from torch import Tensor, nn


class MLPHead(nn.Module):
    """in_dim -> hidden -> num_classes with ReLU and dropout; hidden=0 gives a linear head."""

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(in_dim, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
