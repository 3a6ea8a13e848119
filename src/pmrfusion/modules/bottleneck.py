"""Attention bottlenecks (MBT, Nagrani et al. 2021) for vector features.

Each modality has its own transformer layers over [its tokens; shared bottleneck tokens];
modalities exchange information only through the bottleneck, which after every layer is the
mean over modalities of their updated copies.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pmrfusion.modules.perceiver import VectorTokenizer, encoder_layer


class BottleneckFusion(nn.Module):
    def __init__(
        self,
        in_dims: Sequence[int],
        dim: int = 64,
        tokens_per_modality: int = 4,
        num_bottlenecks: int = 4,
        depth: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.tokenizers = nn.ModuleList(VectorTokenizer(d, tokens_per_modality, dim) for d in in_dims)
        self.bottleneck = nn.Parameter(torch.randn(num_bottlenecks, dim) * 0.02)
        self.layers = nn.ModuleList(
            nn.ModuleList(encoder_layer(dim, heads, dropout) for _ in in_dims) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.tokens_per_modality = tokens_per_modality
        self.out_dim = dim

    def forward(self, xs: Sequence[Tensor]) -> Tensor:
        toks = [t(x) for t, x in zip(self.tokenizers, xs)]
        bott = self.bottleneck.unsqueeze(0).expand(toks[0].shape[0], -1, -1)
        T = self.tokens_per_modality
        for per_modality in self.layers:
            new_bott = []
            for i, layer in enumerate(per_modality):
                out = layer(torch.cat([toks[i], bott], 1))
                toks[i], b = out[:, :T], out[:, T:]
                new_bott.append(b)
            bott = torch.stack(new_bott).mean(0)
        pooled = torch.stack([t.mean(1) for t in toks]).mean(0)
        return self.norm(pooled)


__all__ = ["BottleneckFusion"]
