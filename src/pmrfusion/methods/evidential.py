"""Evidential multi-view classifiers: ``tmc`` (Han et al., ICLR 2021) and ``ecml`` (RCML, AAAI 2024).

Each view m has an evidence network x_m -> e_m = softplus(f_m(x_m)) >= 0 and a Dirichlet
alpha_m = e_m + 1, i.e. an opinion (b_m = e_m / S_m, u_m = K / S_m).

- ``tmc`` fuses the opinions with the reduced Dempster-Shafer rule (`ds_combine`); its task loss
  is sum over the M views and the fused opinion of the expected cross-entropy (digamma form) plus
  the KL to the uniform Dirichlet of the misleading evidence, weighted by min(1, epoch / annealing_step).
- ``ecml`` fuses by RCML's conflictive (average-based) aggregation (`average_evidence`); its task
  loss is the same per-opinion EDL loss averaged over the M + 1 opinions, and the conflictive
  degree loss is the auxiliary loss ``conflict`` (weight gamma, ``loss_weights["conflict"]``).

Outputs: ``logits = log(alpha / S)`` of the fused opinion (log expected class probabilities, so
argmax / softmax / CE work as for any method), ``uncertainty = K / S`` of the fused opinion,
``modality_logits`` = per-view log expected probabilities, ``weights[m] = 1 - u_m`` (view belief mass),
``extras["alpha"]`` (M, B, K) and ``extras["alpha_fused"]`` for the loss. The trainer calls
``on_epoch_start`` so the KL annealing follows the official schedule (epochs are 1-based).

Absent views (``present`` False) carry a vacuous opinion (no evidence): identity for DS; skipped in
the average aggregation; their per-view EDL terms and conflict pairs are dropped.

Differences from the official code (hanmenghan/TMC ``TMC ICLR/``, jiajunsi/RCML ``model.py`` /
``loss_function.py``):
- The evidence network defaults to the official one (``hidden=0``: one Linear + Softplus per view;
  both codes build ``[[d]]`` layer lists that reduce to that). ``hidden > 0`` adds one ReLU layer
  with dropout (RCML's ``EvidenceCollector`` with a hidden size).
- The official codes train with Adam and L2 weight decay 1e-5; the RCML-protocol runner does the
  same (`TrainConfig(optimizer="adam")`) with their lr / batch / epochs; elsewhere (suite, bench)
  the trainer's default AdamW (decoupled weight decay) is used.
- Per-view EDL terms of absent views are masked (the official codes have no missing views).
- Validation-time CE on ``logits`` only picks the best epoch when a validation split is given; the
  RCML protocol trains without one, as the official code does (last epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pmrfusion.methods.base import Batch, FusionModel, ModelOutput, register_method
from pmrfusion.objectives.evidential import (
    annealing_coefficient,
    average_evidence,
    conflictive_degree_loss,
    ds_combine,
    edl_digamma_loss,
)


@dataclass
class EvidentialConfig:
    annealing_step: int = 50  # KL weight min(1, epoch / annealing_step)
    hidden: int = 0  # 0: Linear + Softplus per view (official); > 0: one hidden ReLU layer
    dropout: float = 0.1  # only with hidden > 0 (RCML's EvidenceCollector)
    gamma: float = 1.0  # ecml only: weight of the conflictive degree loss


def evidence_net(dim: int, num_classes: int, hidden: int, dropout: float) -> nn.Module:
    if hidden <= 0:
        return nn.Sequential(nn.Linear(dim, num_classes), nn.Softplus())
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes), nn.Softplus()
    )


class EvidentialFusion(FusionModel):
    """Per-view evidence networks and a fusion rule of Dirichlet opinions (see module docstring)."""

    fusion = "ds"

    def __init__(self, dims: dict[str, int], num_classes: int, cfg: EvidentialConfig):
        super().__init__(list(dims))
        self.cfg = cfg
        self.num_classes = num_classes
        self.nets = nn.ModuleDict(
            {m: evidence_net(d, num_classes, cfg.hidden, cfg.dropout) for m, d in dims.items()}
        )
        self.epoch = 1

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def fuse(self, evidence: Tensor, present: Tensor | None) -> Tensor:
        return ds_combine(evidence + 1, present)

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        evidence = torch.stack([self.nets[m](x) for m, x in zip(self.modalities, self.views(features))])
        alpha = evidence + 1
        fused = self.fuse(evidence, present)
        strength = fused.sum(-1, keepdim=True)
        view_strength = alpha.sum(-1, keepdim=True)
        view_unc = (self.num_classes / view_strength).squeeze(-1)
        return ModelOutput(
            logits=torch.log(fused / strength),
            modality_logits={
                m: torch.log(alpha[i] / view_strength[i]) for i, m in enumerate(self.modalities)
            },
            # an absent view enters the fusion as vacuous (u = 1): weight 0
            weights={m: (1 - view_unc[i]) * (1.0 if present is None else present[:, i].to(view_unc.dtype))
                     for i, m in enumerate(self.modalities)},  # fmt: skip
            uncertainty=(self.num_classes / strength).squeeze(-1),
            extras={"alpha": alpha, "alpha_fused": fused},
        )

    def _edl_terms(self, output: ModelOutput, batch: Batch) -> tuple[Tensor, Tensor]:
        """(fused term (B,), per-view terms (M, B) masked by presence)."""
        coef = annealing_coefficient(self.epoch, self.cfg.annealing_step)
        alpha = output.extras["alpha"]
        fused = edl_digamma_loss(output.extras["alpha_fused"], batch.labels, coef)
        per_view = torch.stack([edl_digamma_loss(a, batch.labels, coef) for a in alpha])
        if batch.present is not None:
            per_view = per_view * batch.present.t().to(per_view.dtype)
        return fused, per_view

    def task_loss(self, output: ModelOutput, batch: Batch) -> Tensor:
        fused, per_view = self._edl_terms(output, batch)
        return (fused + per_view.sum(0)).mean()  # TMC: sum of the M + 1 terms, batch mean


class TMC(EvidentialFusion):
    """Trusted Multi-view Classification: Dempster-Shafer combination of view opinions."""


class ECML(EvidentialFusion):
    """RCML's evidential conflictive multi-view learning: averaged opinions + conflictive degree loss."""

    fusion = "average"

    def __init__(self, dims: dict[str, int], num_classes: int, cfg: EvidentialConfig):
        super().__init__(dims, num_classes, cfg)
        self.loss_weights = {"conflict": cfg.gamma}

    def fuse(self, evidence: Tensor, present: Tensor | None) -> Tensor:
        return average_evidence(evidence, present) + 1

    def task_loss(self, output: ModelOutput, batch: Batch) -> Tensor:
        fused, per_view = self._edl_terms(output, batch)
        return (fused + per_view.sum(0)).mean() / (len(self.modalities) + 1)  # RCML: mean of M + 1

    def auxiliary_losses(self, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        return {"conflict": conflictive_degree_loss(output.extras["alpha"], batch.present)}


def evidential_predict(model: FusionModel, features: dict[str, Tensor], present: Tensor | None = None):
    """(logits, uncertainty or None) for every row, eval mode, no grad."""
    model.eval()
    with torch.no_grad():
        out = model(features, present)
    return out.logits, out.uncertainty


EVIDENTIAL_ONLY = "its opinions are Dirichlet distributions over classes (evidential loss)"


@register_method(
    "tmc", EvidentialConfig, "TMC: per-view Dirichlet evidence, Dempster-Shafer combination",
    classification_only=EVIDENTIAL_ONLY,
)
def _tmc(dims, num_classes, cfg):
    return TMC(dims, num_classes, cfg)


@register_method(
    "ecml", EvidentialConfig, "ECML (RCML): averaged view evidence + conflictive degree loss",
    classification_only=EVIDENTIAL_ONLY,
)
def _ecml(dims, num_classes, cfg):
    return ECML(dims, num_classes, cfg)


__all__ = ["ECML", "TMC", "EvidentialConfig", "EvidentialFusion", "evidential_predict"]
