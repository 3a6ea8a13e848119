"""Symmetric InfoNCE (CLIP) loss, averaged over modality pairs for M > 2."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from pmrfusion.errors import PMRFusionError


def info_nce(a: Tensor, b: Tensor, logit_scale: Tensor | float) -> Tensor:
    """CLIP loss between row-aligned embeddings a, b (B, D): rows i are the positive pairs.

    logits = scale * norm(a) norm(b)^T; loss = (CE(logits, i) + CE(logits^T, i)) / 2.
    `logit_scale` is the multiplier itself (exp of the learned log-scale).
    """
    if a.shape[0] != b.shape[0]:
        raise PMRFusionError(f"InfoNCE needs aligned rows, got {a.shape[0]} and {b.shape[0]}")
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    logits = logit_scale * a @ b.t()
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def multi_info_nce(embeddings: Sequence[Tensor], logit_scale: Tensor | float) -> Tensor:
    """Mean of `info_nce` over all unordered modality pairs."""
    if len(embeddings) < 2:
        raise PMRFusionError("InfoNCE needs at least two modalities")
    pairs = list(itertools.combinations(range(len(embeddings)), 2))
    return sum(info_nce(embeddings[i], embeddings[j], logit_scale) for i, j in pairs) / len(pairs)


__all__ = ["info_nce", "multi_info_nce"]
