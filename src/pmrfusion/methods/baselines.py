"""Static baselines: early fusion by concatenation and late fusion by averaged logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pmrfusion.methods.base import FusionModel, ModelOutput, register_method
from pmrfusion.modules.heads import MLPHead


@dataclass
class HeadConfig:
    hidden: int = 256
    dropout: float = 0.2


class ConcatFusion(FusionModel):
    """Concatenate all modalities -> MLP head."""

    def __init__(self, dims: dict[str, int], num_classes: int, cfg: HeadConfig):
        super().__init__(list(dims))
        self.head = MLPHead(sum(dims.values()), num_classes, cfg.hidden, cfg.dropout)

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        return ModelOutput(logits=self.head(torch.cat(self.views(features), dim=-1)))


class LateFusion(FusionModel):
    """One MLP head per modality; fused logits are their mean."""

    def __init__(self, dims: dict[str, int], num_classes: int, cfg: HeadConfig):
        super().__init__(list(dims))
        self.heads = nn.ModuleDict(
            {m: MLPHead(d, num_classes, cfg.hidden, cfg.dropout) for m, d in dims.items()}
        )

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        per = {m: self.heads[m](x) for m, x in zip(self.modalities, self.views(features))}
        logits = torch.stack(list(per.values())).mean(0)
        return ModelOutput(logits=logits, modality_logits=per)


@register_method("concat", HeadConfig, "concatenate modalities -> MLP head")
def _concat(dims, num_classes, cfg):
    return ConcatFusion(dims, num_classes, cfg)


@register_method("late", HeadConfig, "per-modality MLP heads, averaged logits")
def _late(dims, num_classes, cfg):
    return LateFusion(dims, num_classes, cfg)
