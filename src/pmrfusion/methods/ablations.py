"""Structural ablations of PMR (paper Table 7): a per-modality FFN d -> h -> d with h chosen
so its parameters match the PMR block's, a per-modality linear d -> d, and identity (= concat).
Each feeds the same concat MLP head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pmrfusion.methods.base import FusionModel, ModelOutput, register_method
from pmrfusion.modules.heads import MLPHead
from pmrfusion.modules.reconfiguration import Reconfiguration


@dataclass
class AblationConfig:
    n: int = 4  # PMR expansion the FFN is matched to
    b: float = 0.5
    match_params: bool = True  # False: hidden = n * d (the paper's d -> nd -> d)
    width_ratio: float = 0.0  # > 0: hidden = floor(width_ratio * d), overriding the two above
    hidden: int = 256
    dropout: float = 0.2


def pmr_params_per_modality(dims: dict[str, int], n: int, b: float) -> list[int]:
    """Parameters of the PMR block's four linear maps, per modality (weights + biases)."""
    block = Reconfiguration(list(dims.values()), n, b)
    maps = (block.dissolve, block.shared_maps, block.specific_maps, block.recon_maps)
    return [sum(p.numel() for mm in maps for p in mm[i].parameters()) for i in range(len(dims))]


def matched_hidden(d: int, target: int) -> int:
    """h with 2dh + h + d (d -> h -> d with biases) closest to `target`."""
    return max(1, round((target - d) / (2 * d + 1)))


class MapThenConcat(FusionModel):
    def __init__(self, dims: dict[str, int], num_classes: int, maps: list[nn.Module], cfg: AblationConfig):
        super().__init__(list(dims))
        self.maps = nn.ModuleList(maps)
        self.head = MLPHead(sum(dims.values()), num_classes, cfg.hidden, cfg.dropout)

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        zs = [f(v) for f, v in zip(self.maps, self.views(features))]
        return ModelOutput(logits=self.head(torch.cat(zs, -1)))


@register_method(
    "ffn-concat", AblationConfig, "ablation: per-modality FFN d->h->d (PMR-param-matched) -> concat"
)
def _ffn(dims, num_classes, cfg: AblationConfig):
    targets = pmr_params_per_modality(dims, cfg.n, cfg.b)
    maps = []
    for d, t in zip(dims.values(), targets):
        if cfg.width_ratio > 0:
            h = max(1, int(cfg.width_ratio * d))
        else:
            h = matched_hidden(d, t) if cfg.match_params else cfg.n * d
        maps.append(nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, d)))
    return MapThenConcat(dims, num_classes, maps, cfg)


@register_method("linear-concat", AblationConfig, "ablation: per-modality linear d->d -> concat")
def _linear(dims, num_classes, cfg: AblationConfig):
    return MapThenConcat(dims, num_classes, [nn.Linear(d, d) for d in dims.values()], cfg)


@register_method("identity-concat", AblationConfig, "ablation: no reconfiguration -> concat (= concat)")
def _identity(dims, num_classes, cfg: AblationConfig):
    return MapThenConcat(dims, num_classes, [nn.Identity() for _ in dims], cfg)
