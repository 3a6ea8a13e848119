"""PMR in front of a back-end: sG-X (strict preservation) and rG-X (relaxed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import FusionModel, ModelOutput, register_method
from pmrfusion.modules.heads import MLPHead
from pmrfusion.modules.reconfiguration import Reconfiguration
from pmrfusion.objectives.preservation import preservation_loss
from pmrfusion.optim import OptimizerSpec


@dataclass
class PMRConfig:
    n: int = 4
    b: float = 0.5
    lam: float = 1.0  # weight of the preservation loss
    mapping: str = "linear"
    strict_reduction: str = "mean"  # "mean" (GMF code MSE) or "sum" (eq. 6 squared norm)
    hidden: int = 256
    dropout: float = 0.2
    # "sgd": PMR parameters get their own SGD (lr 2.5e-4, momentum 0.9, wd 1e-4) as in the
    # paper; "main": they are trained by the main optimizer with everything else.
    pmr_optimizer: str = "sgd"


class PMRFusion(FusionModel):
    """PMR block whose outputs Z_m feed a back-end (`backend(z_list) -> ModelOutput`)."""

    def __init__(self, dims: dict[str, int], cfg: PMRConfig, preservation: str, backend: nn.Module):
        super().__init__(list(dims))
        self.pmr = Reconfiguration(list(dims.values()), cfg.n, cfg.b, cfg.mapping)
        self.preservation = preservation
        self.strict_reduction = cfg.strict_reduction
        self.backend = backend
        self.loss_weights = {"preserve": cfg.lam}
        if cfg.pmr_optimizer == "sgd":
            self.default_group_optimizers = {"pmr": OptimizerSpec()}
        elif cfg.pmr_optimizer != "main":
            raise PMRFusionError(f"pmr_optimizer must be 'sgd' or 'main', got {cfg.pmr_optimizer!r}")

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        views = self.views(features)
        rec = self.pmr(views)
        out = self.backend(rec.fused)
        out.aux_losses["preserve"] = preservation_loss(
            self.preservation, views, rec.reconstructed, self.strict_reduction
        )
        return out

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"pmr": list(self.pmr.parameters())}


class ConcatBackend(nn.Module):
    def __init__(self, in_dim: int, num_classes: int, hidden: int, dropout: float):
        super().__init__()
        self.head = MLPHead(in_dim, num_classes, hidden, dropout)

    def forward(self, fused: list[Tensor]) -> ModelOutput:
        return ModelOutput(logits=self.head(torch.cat(fused, dim=-1)))


def _pmr_concat(preservation: str):
    def build(dims, num_classes, cfg: PMRConfig):
        l_star = min(dims.values())
        in_dim = sum(d + l_star for d in dims.values())
        backend = ConcatBackend(in_dim, num_classes, cfg.hidden, cfg.dropout)
        return PMRFusion(dims, cfg, preservation, backend)

    return build


register_method("sg-concat", PMRConfig, "PMR (strict preservation) -> concat MLP head")(_pmr_concat("strict"))
register_method("rg-concat", PMRConfig, "PMR (relaxed preservation) -> concat MLP head")(
    _pmr_concat("relaxed")
)
