"""Confidence estimates and the dynamic fusion weights built on them (QMF, PDF), shared by methods.

- QMF (Zhang et al., ICML 2023): energy score and the affine energy weight, eqs 9 and 13.
- PDF (Cao, Xia et al., ICML 2024, as coded in Yinan-Xia/PDF): ConfidNet (predicted true-class
  probability, TCP), holo-confidence, relative calibration, co-belief weights, TCP L1 loss.
  The M-modality generalisation and the numerical guards are described in `pmrfusion.methods.pdf`.

Methods (``qmf``, ``pdf``, ``iid-q``, ``iid-p``) import these from here, not from each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TCP_EPS = 1e-4


def energy(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Energy score, eq. 13: -T * logsumexp(f / T) over classes, shape (B,)."""
    return -temperature * torch.logsumexp(logits / temperature, dim=-1)


def energy_weights(
    logits: Tensor, alpha: float = -0.1, beta: float = 0.0, temperature: float = 1.0
) -> Tensor:
    """Eq. 9 with the energy as uncertainty: w = alpha * Energy + beta, shape (B,).

    The defaults (alpha = -0.1, beta = 0, T = 1) are the official code's `logsumexp(z) / 10`.
    """
    return alpha * energy(logits, temperature) + beta


class ConfidNet(nn.Module):
    """Predicts the true-class probability in (0, 1) from detached features."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, h: Tensor) -> Tensor:
        return torch.sigmoid(self.net(h.detach())).squeeze(-1)


def holo_confidence(tcp: Tensor, eps: float = TCP_EPS) -> Tensor:
    """(B, M) TCP -> (B, M) holo-confidence, sum_{k != m} log tcp_k / sum_k log tcp_k."""
    logs = torch.log(tcp.clamp(eps, 1.0 - eps))
    total = logs.sum(-1, keepdim=True)
    return (total - logs) / total


def relative_calibration(probs: Tensor, present: Tensor | None = None) -> Tensor:
    """(B, M, K) unimodal probabilities -> (B, M) rc_m = du_m / max_k du_k (1 where max is 0)."""
    K = probs.shape[-1]
    du = (probs - 1.0 / K).abs().mean(-1)
    if present is not None:
        du = du * present.to(du.dtype)
    top = du.max(-1, keepdim=True).values
    return torch.where(top > 0, du / top.clamp_min(1e-12), torch.ones_like(du))


def pdf_weights(
    tcp: Tensor, probs: Tensor | None = None, present: Tensor | None = None, calibrate: bool = False
) -> Tensor:
    """PDF's co-belief fusion weights, (B, M), rows sum to 1 over present modalities; detached.

    tcp: (B, M) predicted true-class probabilities; probs: (B, M, K) unimodal softmax (needed
    for the relative calibration); present: (B, M) bool.
    """
    tcp = tcp.detach()
    cb = tcp + holo_confidence(tcp)
    if calibrate:
        if probs is None:
            raise ValueError("relative calibration needs the unimodal probabilities")
        cb = cb * relative_calibration(probs.detach(), present)
    if present is not None:
        cb = cb.masked_fill(~present.bool(), float("-inf"))
        none = ~present.bool().any(-1, keepdim=True)
        cb = torch.where(none, torch.zeros_like(cb), cb)
    return torch.softmax(cb, dim=-1)


def tcp_l1(tcp: Tensor, logits: Tensor, labels: Tensor) -> Tensor:
    """L1 between predicted TCP and the detached true-class probability."""
    target = torch.softmax(logits.detach(), -1).gather(1, labels[:, None]).squeeze(1)
    return F.l1_loss(tcp, target)


__all__ = [
    "TCP_EPS",
    "ConfidNet",
    "energy",
    "energy_weights",
    "holo_confidence",
    "pdf_weights",
    "relative_calibration",
    "tcp_l1",
]
