"""QMF's energy confidence, per-sample loss history, and history-based ranking regulariser.

Two modes, side by side (QMF paper eqs 9-18 vs the official code, QingyangZhang/QMF@fe6c4c6):

| piece | ``mode="paper"`` | ``mode="code"`` |
|---|---|---|
| history kappa_i | running *mean* of the per-sample CE over updates (eq. 14) | running *sum*, never reset |
| normalisation of kappa | min-max over rows seen so far | min-max over *all* rows, unseen rows = 0 |
| pairs (i, j) | every ordered pair i != j in the batch | i with the next row (cyclic roll by -1) |
| penalty (t = sign(dk)) | relu(t dw + abs(dk)): gap is a margin | relu(t dw - abs(dk)): gap is slack |

dw = w_i - w_j, dk = k_i - k_j. Both guard max == min: all kappa equal -> normalised kappa 0,
so t = 0 and the loss is 0 (the official code divides 0/0 there).

Eq. 16 as printed puts sign(w_i - w_j) on the kappa gap and abs(w_i - w_j) as the margin; taken
literally its gradient only pulls weights together, never reorders them. We read it as the CRL
ranking loss it adapts (sign from the history, margin from the history gap), which is the form
eq. 15 asks for.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

RANKING_MODES = ("paper", "code")


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


def normalise_history(kappa: Tensor, reference: Tensor) -> Tensor:
    """Min-max normalise `kappa` by the range of `reference`; 0 where the range is empty."""
    if reference.numel() == 0:
        return torch.zeros_like(kappa)
    lo, hi = reference.min(), reference.max()
    span = hi - lo
    if not torch.isfinite(span) or float(span) <= 0.0:
        return torch.zeros_like(kappa)
    return (kappa - lo) / span


def ranking_loss(conf: Tensor, kappa: Tensor, mode: str = "code") -> Tensor:
    """Ranking regulariser for one modality.

    conf: (B,) fusion weights / confidences (gradients flow through them).
    kappa: (B,) normalised historical losses of the same rows (no gradient).
    """
    if mode not in RANKING_MODES:
        raise ValueError(f"mode must be one of {RANKING_MODES}, got {mode!r}")
    kappa = kappa.detach().to(conf.dtype)
    if conf.shape[0] < 2:
        return conf.sum() * 0.0
    if mode == "code":
        c2 = torch.roll(conf, -1)
        k2 = torch.roll(kappa, -1)
        t = torch.sign(kappa - k2)
        gap = (kappa - k2).abs()
        return torch.relu(t * (conf - c2) - gap).mean()
    dc = conf[:, None] - conf[None, :]
    dk = kappa[:, None] - kappa[None, :]
    t = torch.sign(dk)
    pen = torch.relu(t * dc + dk.abs())
    off = ~torch.eye(conf.shape[0], dtype=torch.bool, device=conf.device)
    return pen[off].mean()


class LossHistory(nn.Module):
    """Per-row, per-modality loss history in buffers indexed by dataset row id.

    Buffers grow on demand when a row id exceeds the current size (``size=0``: start empty), and
    resize on `load_state_dict`, so a checkpoint taken at any point loads back.
    """

    def __init__(self, num_modalities: int, size: int = 0):
        super().__init__()
        self.register_buffer("total", torch.zeros(num_modalities, size, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(num_modalities, size, dtype=torch.float64))

    @property
    def size(self) -> int:
        return int(self.total.shape[1])

    def _grow(self, needed: int) -> None:
        if needed <= self.size:
            return
        new = max(needed, 2 * self.size)
        pad = new - self.size
        z = torch.zeros(self.total.shape[0], pad, dtype=self.total.dtype, device=self.total.device)
        self.total = torch.cat([self.total, z], dim=1)
        self.count = torch.cat([self.count, z.clone()], dim=1)

    @torch.no_grad()
    def update(self, m: int, index: Tensor, losses: Tensor) -> None:
        """Add per-sample losses of modality m at rows `index` (duplicates accumulate)."""
        index = index.long().to(self.total.device)
        if index.numel() == 0:
            return
        if int(index.min()) < 0:
            raise ValueError("row ids must be >= 0")
        self._grow(int(index.max()) + 1)
        self.total[m].index_add_(0, index, losses.detach().to(self.total))
        self.count[m].index_add_(0, index, torch.ones_like(losses, dtype=self.total.dtype))

    def kappa(self, m: int, index: Tensor, mode: str) -> Tensor:
        """Normalised history of rows `index` for modality m (zeros for unseen rows)."""
        index = index.long().to(self.total.device)
        inside = index < self.size  # rows past the buffer are unseen; reading never grows it
        safe = torch.where(inside, index, torch.zeros_like(index))
        total, count = self.total[m], self.count[m]
        if self.size == 0:
            return torch.zeros(index.shape, dtype=torch.float32, device=index.device)
        if mode == "code":
            k = normalise_history(total[safe], total)
            if not bool(inside.all()):  # unseen rows count as history 0 in the min-max
                k = normalise_history(
                    torch.where(inside, total[safe], torch.zeros_like(k)),
                    torch.cat([total, total.new_zeros(1)]),
                )
            return k.float()
        seen = count > 0
        mean = torch.where(seen, total / count.clamp_min(1.0), torch.zeros_like(total))
        k = normalise_history(mean[safe], mean[seen])
        return torch.where(inside & seen[safe], k, torch.zeros_like(k)).float()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("total", "count"):
            key = prefix + name
            if key in state_dict and state_dict[key].shape != getattr(self, name).shape:
                setattr(self, name, torch.zeros_like(state_dict[key], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


__all__ = [
    "RANKING_MODES",
    "LossHistory",
    "energy",
    "energy_weights",
    "normalise_history",
    "ranking_loss",
]
