"""Per-sample, per-modality loss history kept in buffers indexed by dataset row id.

Used by QMF's history-based ranking regulariser (`pmrfusion.objectives.qmf_ranking`) and by any
method that reuses QMF's weighting (IID-Q). Two readings of the history, see `LossHistory.kappa`:
``"code"`` (cumulative sum, min-max over all rows) and ``"paper"`` (running mean, rows seen).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def normalise_history(kappa: Tensor, reference: Tensor) -> Tensor:
    """Min-max normalise `kappa` by the range of `reference`; 0 where the range is empty."""
    if reference.numel() == 0:
        return torch.zeros_like(kappa)
    lo, hi = reference.min(), reference.max()
    span = hi - lo
    if not torch.isfinite(span) or float(span) <= 0.0:
        return torch.zeros_like(kappa)
    return (kappa - lo) / span


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


__all__ = ["LossHistory", "normalise_history"]
