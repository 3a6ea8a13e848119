"""PDF: Predictive Dynamic Fusion (Cao, Xia et al., ICML 2024) as coded, method ``pdf``.

Follows Yinan-Xia/PDF ``src/models/latefusion_pdf.py`` (notes-peers 2.6):

- Mono-confidence: per modality a ConfidNet predicts the true-class probability (TCP) from the
  *detached* hidden features of the unimodal classifier, trained with
  L1(tcp_m, softmax(f_m)[y].detach()).
  The official ConfidNet is three Linear layers with no activation (one linear map in effect)
  and then a Sigmoid. Ours is Linear-ReLU-Linear-Sigmoid at the classifier's hidden width.
- Holo-confidence, generalised to M modalities:
  ``holo_m = sum_{k != m} log tcp_k / sum_k log tcp_k``, the share of the total log-uncertainty
  carried by the *other* modalities. For M = 2 this is exactly the official
  ``log(tcp_other) / log(tcp_self * tcp_other)``. tcp is clamped to [eps, 1 - eps], so every log
  is strictly negative, the denominator is at most M log(1 - eps) < 0, and holo lies in [0, 1].
  The official ``+ 1e-8`` in the denominator does not prevent division by about 0, which is
  where its NaN comes from.
- Co-belief ``cb_m = tcp_m + holo_m``. Fusion weights ``softmax_m(cb)``, detached, taken over the
  modalities present.
- Relative calibration, in eval mode only:
  ``du_m = mean_k |p_mk - 1/K|`` and ``rc_m = du_m / max_k du_k``, which gives 1 for the most
  decisive modality. For M = 2 this matches the official if/else. Then
  ``w = softmax_m(cb_m * rc_m)``. The official code validates without RC. Here ``predict`` runs
  in eval mode, so validation uses RC as well (set ``calibrate=False`` to turn it off).
- Loss = CE(fused) + sum_m CE(f_m) + sum_m L1 TCP, all with weight 1.
  The official weight decay on the first ConfidNet layer is not reproduced: the trainer's AdamW
  decays every parameter.

The weighting pieces live in `pmrfusion.modules.confidence` (reused by IID-P).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.methods.base import Batch, FusionModel, ModelOutput, register_method
from pmrfusion.modules.confidence import (  # noqa: F401  (re-exported for existing imports)
    TCP_EPS,
    ConfidNet,
    holo_confidence,
    pdf_weights,
    relative_calibration,
    tcp_l1,
)
from pmrfusion.modules.heads import MLPHead


@dataclass
class PDFConfig:
    hidden: int = 256
    dropout: float = 0.2
    confid_hidden: int = 128
    calibrate: bool = True  # relative calibration in eval mode
    tcp_weight: float = 1.0


def split_head(head: MLPHead, x: Tensor) -> tuple[Tensor, Tensor]:
    """(hidden features, logits) of an MLPHead; a linear head's features are its input."""
    net = head.net
    if len(net) == 5:
        h = net[:3](x)
        return h, net[3:](h)
    return x, net(x)


class PDF(FusionModel):
    def __init__(self, dims: dict[str, int], num_classes: int, cfg: PDFConfig):
        super().__init__(list(dims))
        self.cfg = cfg
        self.heads = nn.ModuleDict(
            {m: MLPHead(d, num_classes, cfg.hidden, cfg.dropout) for m, d in dims.items()}
        )
        feat_dim = {m: (cfg.hidden if cfg.hidden > 0 else d) for m, d in dims.items()}
        self.confid = nn.ModuleDict({m: ConfidNet(feat_dim[m], cfg.confid_hidden) for m in dims})
        self.loss_weights = {"unimodal": 1.0, "tcp": cfg.tcp_weight}

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        per, tcps = {}, []
        for m, x in zip(self.modalities, self.views(features)):
            h, z = split_head(self.heads[m], x)
            per[m] = z
            tcps.append(self.confid[m](h))
        tcp = torch.stack(tcps, -1)
        probs = torch.stack([torch.softmax(per[m], -1) for m in self.modalities], 1)
        w = pdf_weights(tcp, probs, present, calibrate=self.cfg.calibrate and not self.training)
        logits = sum(w[:, i : i + 1] * per[m] for i, m in enumerate(self.modalities))
        weights = {m: w[:, i] for i, m in enumerate(self.modalities)}
        out = ModelOutput(logits=logits, modality_logits=per, weights=weights)
        out.embeddings = {f"tcp:{m}": tcp[:, i] for i, m in enumerate(self.modalities)}
        return out

    def auxiliary_losses(self, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        uni = sum(F.cross_entropy(output.modality_logits[m], batch.labels) for m in self.modalities)
        tcp = sum(
            tcp_l1(output.embeddings[f"tcp:{m}"], output.modality_logits[m], batch.labels)
            for m in self.modalities
        )
        return {**output.aux_losses, "unimodal": uni, "tcp": tcp}


@register_method(
    "pdf", PDFConfig, "PDF: predictive dynamic fusion (TCP + holo co-belief weights)",
    classification_only="its confidence target is the softmax probability of the true class",
)
def _pdf(dims, num_classes, cfg: PDFConfig):
    return PDF(dims, num_classes, cfg)
