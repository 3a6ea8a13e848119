"""Sparse mixture of experts: top-k routed SwiGLU experts plus shared experts (PMR-MoE).

Parameter count without biases (appendix E.4 of the PMR paper): each SwiGLU expert has three
d x h matrices, so (routed + shared) * 3 * h * d. Appendix A sets the expert hidden width to
2 l* for an FFN; the SwiGLU equivalent (the usual 2/3 factor, which is where E.4's "8/3"
comes from for a 4d FFN) is h = (2/3)(2 l*) = 4/3 l*, giving 5 * 3 * (4/3) l*^2 = 20 l*^2,
E.4's total. Taken literally, E.4's bracket with h = 8/3 l* sums to 40 l*^2, not 20 l*^2:
`moe_expert_params` gives the exact count for any h.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def moe_expert_params(dim: int, hidden: int, routed: int = 4, shared: int = 1) -> int:
    """Expert weights (no biases) of `SparseMoE`: (routed + shared) * 3 * hidden * dim."""
    return (routed + shared) * 3 * hidden * dim


def load_balancing_loss(router_probs: Tensor, top_idx: Tensor, num_experts: int) -> Tensor:
    """E * sum_i f_i p_i - 1 (Switch Transformer form, shifted so uniform routing gives 0).

    f_i: fraction of the (token, slot) assignments sent to expert i; p_i: mean router
    probability of expert i. By Cauchy-Schwarz-type arguments the minimum over balanced
    assignments is 0 and it grows as routing concentrates on few experts.
    """
    probs = router_probs.reshape(-1, num_experts)
    counts = F.one_hot(top_idx.reshape(-1), num_experts).float()
    f = counts.mean(0)
    p = probs.mean(0)
    return num_experts * (f * p).sum() - 1.0


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoE(nn.Module):
    """x (..., d) -> x-shaped output: shared experts on every token plus the top-k routed
    experts weighted by their renormalised router probabilities. `self.aux_loss` holds the
    load-balancing loss of the last forward pass."""

    def __init__(self, dim: int, hidden: int, num_experts: int = 4, top_k: int = 2, num_shared: int = 1):
        super().__init__()
        self.num_experts, self.top_k = num_experts, top_k
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(dim, hidden) for _ in range(num_experts))
        self.shared = nn.ModuleList(SwiGLU(dim, hidden) for _ in range(num_shared))
        self.aux_loss: Tensor | None = None

    def expert_parameters(self) -> int:
        return sum(p.numel() for m in (self.experts, self.shared) for p in m.parameters())

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        probs = self.router(flat).softmax(-1)
        top_p, top_i = probs.topk(self.top_k, dim=-1)
        top_p = top_p / top_p.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (top_i == e).nonzero(as_tuple=True)
            if rows.numel():
                out.index_add_(0, rows, expert(flat[rows]) * top_p[rows, slot].unsqueeze(-1))
        for expert in self.shared:
            out = out + expert(flat)
        self.aux_loss = load_balancing_loss(probs, top_i, self.num_experts)
        return out.reshape(shape)


__all__ = ["SparseMoE", "SwiGLU", "load_balancing_loss", "moe_expert_params"]
