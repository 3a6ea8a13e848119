"""Vector tokenizer and a small Perceiver (latents cross-attend to modality tokens)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class VectorTokenizer(nn.Module):
    """(B, d) -> (B, T, D): a linear to T*D, split into T tokens, plus learned positions."""

    def __init__(self, in_dim: int, num_tokens: int, token_dim: int):
        super().__init__()
        self.num_tokens, self.token_dim = num_tokens, token_dim
        self.proj = nn.Linear(in_dim, num_tokens * token_dim)
        self.pos = nn.Parameter(torch.randn(num_tokens, token_dim) * 0.02)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).view(x.shape[0], self.num_tokens, self.token_dim) + self.pos


def encoder_layer(dim: int, heads: int, dropout: float) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(
        dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True, norm_first=True
    )


class Perceiver(nn.Module):
    """Latent array (L, D) cross-attends once to all modality tokens, then `depth` self-attention
    layers over the latents; returns the mean latent (B, D)."""

    def __init__(
        self,
        in_dims: Sequence[int],
        num_latents: int = 8,
        dim: int = 64,
        tokens_per_modality: int = 4,
        depth: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.tokenizers = nn.ModuleList(VectorTokenizer(d, tokens_per_modality, dim) for d in in_dims)
        self.modality_embed = nn.Parameter(torch.randn(len(in_dims), 1, dim) * 0.02)
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.norm_kv = nn.LayerNorm(dim)
        self.norm_q = nn.LayerNorm(dim)
        self.cross = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_ff = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
        )
        self.layers = nn.ModuleList(encoder_layer(dim, heads, dropout) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, xs: Sequence[Tensor]) -> Tensor:
        tokens = torch.cat(
            [t(x) + self.modality_embed[i] for i, (t, x) in enumerate(zip(self.tokenizers, xs))], 1
        )
        kv = self.norm_kv(tokens)
        lat = self.latents.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        q = self.norm_q(lat)
        lat = lat + self.cross(q, kv, kv, need_weights=False)[0]
        lat = lat + self.cross_ff(lat)
        for layer in self.layers:
            lat = layer(lat)
        return self.norm_out(lat).mean(1)


__all__ = ["Perceiver", "VectorTokenizer", "encoder_layer"]
