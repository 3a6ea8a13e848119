"""PMR information-preservation losses (strict sPMR and relaxed rPMR, paper eq. 6)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from pmrfusion.errors import PMRFusionError
from pmrfusion.precision import float32


def strict_preservation(
    views: Sequence[Tensor], reconstructed: Sequence[Tensor], reduction: str = "mean"
) -> Tensor:
    """sum_m ||V_m - V'_m||^2, averaged over the batch.

    reduction="sum": the squared L2 norm per sample as in eq. 6;
    reduction="mean": divided by l_m (the element-wise MSE of the GMF code, Algorithm 3),
    which keeps the term on the scale of the task loss for wide features.
    """
    if reduction not in ("mean", "sum"):
        raise PMRFusionError(f"strict preservation reduction must be 'mean' or 'sum', got {reduction!r}")
    total = views[0].new_zeros(())
    for v, r in zip(views, reconstructed):
        sq = (v - r).pow(2).sum(dim=-1)
        if reduction == "mean":
            sq = sq / v.shape[-1]
        total = total + sq.mean()
    return total


def relaxed_preservation(views: Sequence[Tensor], reconstructed: Sequence[Tensor]) -> Tensor:
    """sum_m (1 - cos(V_m, V'_m)), averaged over the batch."""
    total = views[0].new_zeros(())
    for v, r in zip(views, reconstructed):
        total = total + (1.0 - F.cosine_similarity(v, r, dim=-1, eps=1e-8)).mean()
    return total


PRESERVATIONS = ("strict", "relaxed")


@float32
def preservation_loss(
    kind: str, views: Sequence[Tensor], reconstructed: Sequence[Tensor], reduction: str = "mean"
) -> Tensor:
    """`kind` is "strict" (sPMR) or "relaxed" (rPMR)."""
    if kind == "strict":
        return strict_preservation(views, reconstructed, reduction)
    if kind == "relaxed":
        return relaxed_preservation(views, reconstructed)
    raise PMRFusionError(f"unknown preservation '{kind}': use 'strict' or 'relaxed'")
