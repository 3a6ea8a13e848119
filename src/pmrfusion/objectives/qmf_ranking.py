"""QMF's history-based ranking regulariser (energy confidence: `pmrfusion.modules.confidence`;
per-sample loss history: `pmrfusion.modules.loss_history`, both re-exported here).

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
import torch.nn.functional as F
from torch import Tensor

from pmrfusion.errors import PMRFusionError
from pmrfusion.modules.confidence import energy, energy_weights
from pmrfusion.modules.loss_history import LossHistory, normalise_history

RANKING_MODES = ("paper", "code")


def check_ranking_mode(mode: str) -> None:
    if mode not in RANKING_MODES:
        raise PMRFusionError(f"QMF ranking mode must be one of {RANKING_MODES}, got {mode!r}")


def history_ranking_loss(
    history: LossHistory,
    modality_logits: list[Tensor],
    confidences: list[Tensor],
    labels: Tensor,
    index: Tensor,
    mode: str,
    training: bool,
) -> Tensor:
    """QMF's regulariser summed over modalities: update the history (training only), then rank.

    modality_logits / confidences: per modality, (B, K) logits and (B,) confidences (with grad);
    labels / index: the batch's labels and dataset row ids.
    """
    total = confidences[0].new_zeros(())
    for m, (z, c) in enumerate(zip(modality_logits, confidences)):
        if training:
            per = F.cross_entropy(z.detach(), labels, reduction="none")
            history.update(m, index, per)
        kappa = history.kappa(m, index, mode).to(c.device)
        total = total + ranking_loss(c, kappa, mode)
    return total




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


__all__ = [
    "RANKING_MODES",
    "LossHistory",
    "check_ranking_mode",
    "energy",
    "energy_weights",
    "history_ranking_loss",
    "normalise_history",
    "ranking_loss",
]
