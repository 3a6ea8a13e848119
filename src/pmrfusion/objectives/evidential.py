"""Subjective-logic opinions from Dirichlet evidence, their combination rules and the EDL losses.

Shapes: evidence / alpha (B, K) per view, or stacked (M, B, K); ``present`` (B, M) bool.
An opinion is (belief b = e / S, uncertainty u = K / S) with S = sum_k alpha_k and alpha = e + 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pmrfusion.precision import float32


def opinion(alpha: Tensor) -> tuple[Tensor, Tensor]:
    """(belief (.., K), uncertainty (..,)) of Dirichlet parameters alpha (.., K)."""
    strength = alpha.sum(-1, keepdim=True)
    return (alpha - 1) / strength, (alpha.shape[-1] / strength).squeeze(-1)


def alpha_from_opinion(belief: Tensor, uncertainty: Tensor) -> Tensor:
    """Dirichlet parameters of an opinion: S = K / u, e = b * S, alpha = e + 1."""
    strength = belief.shape[-1] / uncertainty.unsqueeze(-1)
    return belief * strength + 1


@float32
def ds_combine_two(alpha1: Tensor, alpha2: Tensor) -> Tensor:
    """Reduced Dempster-Shafer combination of two Dirichlet opinions (TMC, eq. 3).

    C = sum_{i != j} b1_i b2_j; b = (b1 b2 + b1 u2 + b2 u1) / (1 - C); u = u1 u2 / (1 - C).
    A vacuous opinion (alpha = 1, u = 1) is the identity.
    """
    b1, u1 = opinion(alpha1)
    b2, u2 = opinion(alpha2)
    conflict = b1.sum(-1) * b2.sum(-1) - (b1 * b2).sum(-1)
    scale = (1 - conflict).unsqueeze(-1)
    belief = (b1 * b2 + b1 * u2.unsqueeze(-1) + b2 * u1.unsqueeze(-1)) / scale
    unc = u1 * u2 / (1 - conflict)
    return alpha_from_opinion(belief, unc)


@float32
def ds_combine(alphas: Tensor, present: Tensor | None = None) -> Tensor:
    """Fold `ds_combine_two` over views in order (M, B, K) -> (B, K); absent views are vacuous."""
    if present is not None:
        mask = present.t().unsqueeze(-1).to(alphas.dtype)  # (M, B, 1)
        alphas = alphas * mask + (1 - mask)  # alpha = 1: no evidence
    out = alphas[0]
    for a in alphas[1:]:
        out = ds_combine_two(out, a)
    return out


@float32
def average_evidence(evidence: Tensor, present: Tensor | None = None) -> Tensor:
    """RCML's conflictive (average-based) aggregation, folded over views in order.

    e_a <- (e_a + e_v) / 2 for v = 2..M (the official code's order, so later views weigh more);
    for two views this is b_a = (b1 u2 + b2 u1) / (u1 + u2), u_a = 2 u1 u2 / (u1 + u2) (RCML eq. 7).
    An absent view leaves the aggregate unchanged; the first present view starts it.
    """
    if present is None:
        out = evidence[0]
        for e in evidence[1:]:
            out = (out + e) / 2
        return out
    pres = present.t().unsqueeze(-1)  # (M, B, 1)
    out = torch.where(pres[0], evidence[0], torch.zeros_like(evidence[0]))
    started = pres[0]
    for e, p in zip(evidence[1:], pres[1:]):
        out = torch.where(p, torch.where(started, (out + e) / 2, e), out)
        started = started | p
    return out


def annealing_coefficient(epoch: int, annealing_step: int) -> float:
    """min(1, epoch / annealing_step), the official TMC / RCML KL weight (epochs are 1-based)."""
    return min(1.0, epoch / max(annealing_step, 1))


@float32
def kl_to_uniform(alpha: Tensor) -> Tensor:
    """KL(Dir(alpha) || Dir(1)) per row, (B, K) -> (B,)."""
    k = alpha.shape[-1]
    strength = alpha.sum(-1)
    log_norm = torch.lgamma(strength) - torch.lgamma(alpha).sum(-1) - torch.lgamma(alpha.new_tensor(float(k)))
    digamma_term = ((alpha - 1) * (torch.digamma(alpha) - torch.digamma(strength).unsqueeze(-1))).sum(-1)
    return log_norm + digamma_term


@float32
def edl_digamma_loss(alpha: Tensor, labels: Tensor, annealing: float) -> Tensor:
    """Per-row expected cross-entropy under Dir(alpha) + annealed KL of the misleading evidence.

    sum_k y_k (psi(S) - psi(alpha_k)) + annealing * KL(Dir(alpha~) || Dir(1)), alpha~ = y + (1 - y) alpha.
    """
    onehot = torch.nn.functional.one_hot(labels, alpha.shape[-1]).to(alpha.dtype)
    strength = alpha.sum(-1, keepdim=True)
    expected_ce = (onehot * (torch.digamma(strength) - torch.digamma(alpha))).sum(-1)
    alpha_tilde = (alpha - 1) * (1 - onehot) + 1
    return expected_ce + annealing * kl_to_uniform(alpha_tilde)


@float32
def conflictive_degree_loss(alphas: Tensor, present: Tensor | None = None) -> Tensor:
    """RCML's conflictive degree loss, mean over the batch (official `get_dc_loss`).

    Per row: sum_{i, j} pd(i, j) * (1 - u_i)(1 - u_j), pd(i, j) = sum_k |p_i,k - p_j,k| / 2 / (M - 1),
    p = alpha / S; both orders of a pair count, i = j contributes 0. Pairs with an absent view are dropped.
    """
    m = alphas.shape[0]
    prob = alphas / alphas.sum(-1, keepdim=True)  # (M, B, K)
    _, unc = opinion(alphas)  # (M, B)
    pd = (prob.unsqueeze(0) - prob.unsqueeze(1)).abs().sum(-1) / 2 / max(m - 1, 1)  # (M, M, B)
    cc = (1 - unc).unsqueeze(0) * (1 - unc).unsqueeze(1)
    dc = pd * cc
    if present is not None:
        pres = present.t().to(dc.dtype)  # (M, B)
        dc = dc * pres.unsqueeze(0) * pres.unsqueeze(1)
    return dc.sum((0, 1)).mean()


__all__ = [
    "alpha_from_opinion",
    "annealing_coefficient",
    "average_evidence",
    "conflictive_degree_loss",
    "ds_combine",
    "ds_combine_two",
    "edl_digamma_loss",
    "kl_to_uniform",
    "opinion",
]
