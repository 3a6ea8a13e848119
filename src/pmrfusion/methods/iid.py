"""IID (Li et al., ICLR 2026): intermediate fusion with an informatic constraint and distribution
coherence. Registered methods ``iid-l``, ``iid-q`` and ``iid-p``.

Each modality is encoded to a common dimension, z_m = h_m(x_m) (an MLP with a linear output).
The fused representation is z = sum_m w_m z_m, and a shared linear head g gives the logits.
Absent modalities get weight 0. Training adds alpha * L_ic + beta * L_dc
(see `pmrfusion.objectives.wasserstein`). The three variants differ only in how they get w:

- ``iid-l``: static learned weights, softmax over one learnable logit per modality (initialised
  uniform), renormalised over the modalities present.
- ``iid-q``: QMF energy weights w_m = alpha_q * Energy(g(z_m)) + beta_q, detached as in the QMF
  code. The unimodal logits come from the shared linear head. The QMF history ranking regulariser
  (``rank_mode``, weight ``rank_lam``) keeps the energies ordered by historical loss.
- ``iid-p``: PDF co-belief weights (`pmrfusion.modules.confidence.pdf_weights`). ConfidNets on
  the detached z_m predict the TCP of softmax(g(z_m)) under an L1 loss. Relative calibration is
  applied in eval mode.

IID-Q and IID-P "reuse the dynamic weights of QMF / PDF" (IID paper, Sec. 3); those weights are
read off unimodal classifiers that QMF and PDF train with a per-modality cross-entropy (weight 1,
QMF eq. 18, PDF's loss). So both add ``unimodal_weight * sum_m CE(g(z_m), y)`` (default 1;
``unimodal_weight=0`` restores the old form, where only L_ic pushed g(z_m) and the energy /
TCP signal could collapse under noise).

Any M >= 2 modalities work. L_dc averages over all modality pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import (
    NONNEGATIVE,
    REAL,
    SEED,
    WIDTH,
    Batch,
    FusionModel,
    ModelOutput,
    register_method,
)
from pmrfusion.modules.confidence import ConfidNet, energy_weights, pdf_weights, tcp_l1
from pmrfusion.modules.loss_history import LossHistory
from pmrfusion.objectives.qmf_ranking import check_ranking_mode, history_ranking_loss
from pmrfusion.objectives.wasserstein import SpectralRIP, coherence_loss, informatic_constraint


@dataclass
class IIDConfig:
    alpha: float = field(default=0.1, metadata=NONNEGATIVE)  # weight of L_ic
    # weight of L_dc (normalised cost: O(1); see objectives.wasserstein)
    beta: float = field(default=0.1, metadata=NONNEGATIVE)
    ic: bool = True
    dc: bool = True
    d1: int = 16  # frequencies kept after the FFT
    rip_dim: int = 16  # k: rows of the Gaussian RIP projection
    proj_dim: int = 128  # common representation dimension
    hidden: int = field(default=256, metadata=WIDTH)
    dropout: float = 0.2
    blur: float = 0.05
    reach: float = field(default=1.0, metadata=REAL)  # unbalanced-OT marginal relaxation; <= 0: balanced
    seed: int = field(default=0, metadata=SEED)  # seed of the fixed RIP projection
    # iid-q / iid-p: weight of sum_m CE(g(z_m), y), the per-modality task loss that QMF's and
    # PDF's weights are built on (both train their unimodal classifiers with it, weight 1).
    # 0 = the old behaviour (unimodal logits pushed only by L_ic). Not used by iid-l.
    unimodal_weight: float = 1.0
    # iid-q
    q_alpha: float = field(default=-0.1, metadata=REAL)
    q_beta: float = field(default=0.0, metadata=REAL)
    rank_lam: float = 0.1
    rank_mode: str = "code"
    history_size: int = 0
    # iid-p
    confid_hidden: int = 64
    calibrate: bool = True
    tcp_weight: float = 1.0


WEIGHTINGS = ("static", "qmf", "pdf")


class IID(FusionModel):
    def __init__(self, dims: dict[str, int], num_classes: int, cfg: IIDConfig, weighting: str):
        super().__init__(list(dims))
        if weighting not in WEIGHTINGS:
            raise PMRFusionError(f"IID weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if cfg.d1 < 1 or cfg.proj_dim < 2 or cfg.rip_dim < 1:
            raise PMRFusionError("IID needs d1 >= 1, rip_dim >= 1 and proj_dim >= 2")
        self.cfg, self.weighting = cfg, weighting
        M = len(dims)
        self.encoders = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Dropout(cfg.dropout),
                    nn.Linear(d, cfg.hidden),
                    nn.ReLU(),
                    nn.Dropout(cfg.dropout),
                    nn.Linear(cfg.hidden, cfg.proj_dim),
                )
                for m, d in dims.items()
            }
        )
        self.head = nn.Linear(cfg.proj_dim, num_classes)
        self.rip = SpectralRIP(cfg.proj_dim, cfg.d1, cfg.rip_dim, cfg.seed)
        self.loss_weights = {"ic": cfg.alpha, "dc": cfg.beta}
        if weighting != "static" and cfg.unimodal_weight < 0:
            raise PMRFusionError(f"IID unimodal_weight must be >= 0, got {cfg.unimodal_weight}")
        self.unimodal_loss = weighting != "static" and cfg.unimodal_weight > 0
        if self.unimodal_loss:
            self.loss_weights["unimodal"] = cfg.unimodal_weight
        if weighting == "static":
            self.weight_logits = nn.Parameter(torch.zeros(M))
        elif weighting == "qmf":
            check_ranking_mode(cfg.rank_mode)
            self.history = LossHistory(M, cfg.history_size)
            self.loss_weights["rank"] = cfg.rank_lam
        else:
            self.confid = nn.ModuleDict({m: ConfidNet(cfg.proj_dim, cfg.confid_hidden) for m in dims})
            self.loss_weights["tcp"] = cfg.tcp_weight

    def _weights(self, zs: list[Tensor], uni: list[Tensor], present: Tensor | None):
        B, M = zs[0].shape[0], len(zs)
        extra: dict[str, Tensor] = {}
        if self.weighting == "static":
            logit = self.weight_logits.expand(B, M)
            if present is not None:
                logit = logit.masked_fill(~present.bool(), float("-inf"))
                logit = torch.where(present.bool().any(-1, keepdim=True), logit, torch.zeros_like(logit))
            w = torch.softmax(logit, -1)
        elif self.weighting == "qmf":
            conf = torch.stack([energy_weights(u, self.cfg.q_alpha, self.cfg.q_beta) for u in uni], -1)
            extra["conf"] = conf
            w = conf.detach()
            if present is not None:
                w = w * present.to(w.dtype)
        else:
            tcp = torch.stack([self.confid[m](z) for m, z in zip(self.modalities, zs)], -1)
            extra["tcp"] = tcp
            probs = torch.stack([torch.softmax(u, -1) for u in uni], 1)
            w = pdf_weights(tcp, probs, present, calibrate=self.cfg.calibrate and not self.training)
        return w, extra

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        zs = [self.encoders[m](x) for m, x in zip(self.modalities, self.views(features))]
        uni = [self.head(z) for z in zs]
        w, extra = self._weights(zs, uni, present)
        fused = sum(w[:, i : i + 1] * z for i, z in enumerate(zs))
        out = ModelOutput(
            logits=self.head(fused),
            modality_logits=dict(zip(self.modalities, uni)),
            weights={m: w[:, i] for i, m in enumerate(self.modalities)},
            embeddings={**dict(zip(self.modalities, zs)), "fused": fused},
        )
        # weighting internals for the auxiliary losses: "conf" (iid-q) / "tcp" (iid-p), (B, M)
        out.embeddings.update({f"weighting:{k}": v for k, v in extra.items()})
        return out

    def auxiliary_losses(self, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        zs = [output.embeddings[m] for m in self.modalities]
        uni = [output.modality_logits[m] for m in self.modalities]
        losses = dict(output.aux_losses)
        if self.cfg.ic:
            losses["ic"] = informatic_constraint(self.head, output.embeddings["fused"], zs, batch.labels)
        if self.cfg.dc:
            reach = self.cfg.reach if self.cfg.reach > 0 else None
            losses["dc"] = coherence_loss(self.rip(zs), self.cfg.blur, reach)
        if self.unimodal_loss:
            losses["unimodal"] = sum(F.cross_entropy(u, batch.labels) for u in uni)
        if self.weighting == "qmf":
            conf = output.embeddings["weighting:conf"]
            losses["rank"] = history_ranking_loss(
                self.history,
                uni,
                list(conf.unbind(-1)),
                batch.labels,
                batch.index,
                self.cfg.rank_mode,
                self.training,
            )
        elif self.weighting == "pdf":
            tcp = output.embeddings["weighting:tcp"]
            losses["tcp"] = sum(tcp_l1(tcp[:, i], u, batch.labels) for i, u in enumerate(uni))
        return losses


def _builder(weighting: str):
    def build(dims, num_classes, cfg: IIDConfig):
        return IID(dims, num_classes, cfg, weighting)

    return build


register_method(
    "iid-l", IIDConfig, "IID intermediate fusion, static learned weights + L_ic + L_dc",
    classification_only="its informatic constraint is a cross-entropy on class logits",
)(_builder("static"))
register_method(
    "iid-q", IIDConfig, "IID intermediate fusion, QMF energy weights + L_ic + L_dc",
    classification_only="its weights and informatic constraint use class probabilities",
)(_builder("qmf"))
register_method(
    "iid-p", IIDConfig, "IID intermediate fusion, PDF co-belief weights + L_ic + L_dc",
    classification_only="its weights and informatic constraint use class probabilities",
)(_builder("pdf"))
