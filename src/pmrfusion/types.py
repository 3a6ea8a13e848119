"""Core data types shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Batch:
    """One mini-batch: per-modality features (B, d_m), present mask (B, M), labels, row ids."""

    features: dict[str, Tensor]
    present: Tensor
    labels: Tensor
    index: Tensor


@dataclass
class ModelOutput:
    logits: Tensor
    modality_logits: dict[str, Tensor] = field(default_factory=dict)
    weights: dict[str, Tensor] = field(default_factory=dict)
    embeddings: dict[str, Tensor] = field(default_factory=dict)
    aux_losses: dict[str, Tensor] = field(default_factory=dict)  # unweighted
    # Per-sample uncertainty (B,) for methods that estimate one (e.g. evidential u = K / S); else None.
    uncertainty: Tensor | None = None
    # Method-specific tensors a custom `FusionModel.task_loss` needs (e.g. Dirichlet parameters).
    extras: dict[str, Tensor] = field(default_factory=dict)
