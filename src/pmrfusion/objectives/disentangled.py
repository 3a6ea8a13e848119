"""Losses of the shared/specific disentanglement methods (MISA, DrFuse)."""

from __future__ import annotations

import torch
from torch import Tensor


def central_moment_discrepancy(x: Tensor, y: Tensor, moments: int = 5) -> Tensor:
    """CMD (Zellinger et al., 2017) as MISA's code computes it, for (B, d) samples in [0, 1].

    ||E x - E y||_2 + sum_{k=2..moments} ||E (x - E x)^k - E (y - E y)^k||_2 (the 1 / |b - a|^k
    factors are 1 for sigmoid features).
    """
    mx, my = x.mean(0), y.mean(0)
    cx, cy = x - mx, y - my
    total = torch.linalg.vector_norm(mx - my)
    for k in range(2, moments + 1):
        total = total + torch.linalg.vector_norm(cx.pow(k).mean(0) - cy.pow(k).mean(0))
    return total


def soft_orthogonality(a: Tensor, b: Tensor) -> Tensor:
    """MISA's difference loss (official ``DiffLoss``): mean of (A^T B)^2 over the d_a x d_b entries.

    Rows of A and B are centred over the batch and divided by their L2 norm (+ 1e-6); the norms
    are detached, as in the official code, so the gradient does not flow through them.
    """
    a = a - a.mean(0, keepdim=True)
    b = b - b.mean(0, keepdim=True)
    a = a / (a.norm(dim=1, keepdim=True).detach() + 1e-6)
    b = b / (b.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (a.t() @ b).pow(2).mean()


def jensen_shannon(p: Tensor, q: Tensor) -> Tensor:
    """DrFuse's JS divergence (official code), per row of two (B, d) tensors with entries in [0, 1]:
    1/2 sum_d [p log(p / m) + q log(q / m)], m = (p + q) / 2.

    The entries are taken as they are (DrFuse feeds sigmoid vectors): no renormalisation of a row
    to a distribution. 0 log 0 = 0.
    """
    m = (p + q) / 2
    return 0.5 * (torch.xlogy(p, p) - torch.xlogy(p, m) + torch.xlogy(q, q) - torch.xlogy(q, m)).sum(-1)


__all__ = ["central_moment_discrepancy", "jensen_shannon", "soft_orthogonality"]
