"""PMR in front of a back-end: sG-X (strict preservation) and rG-X (relaxed).

Routing (GMF appendix G.3, Fig. 13; `routing="g-structure"`, the default): the
modality-invariant parts S_m go directly to the task classifier, only the modality-specific
parts T_m (in R^{l_m}, the width of V_m) are the back-end's input. The classifier reads
[F ; S̄] with F the back-end's fused features and S̄ = mean_m S_m in R^{l*}, so its input width
is D_F + l* (`classifier_input_dim`). For the concat back-end with a linear head (hidden = 0)
D_F = sum_m l_m: PMR Table 6 prints "Cls. Dim" 2816 = 2048 + 768 for sG-Concat on Food-101,
i.e. D_F alone; the G.3 text sends the shared parts to the classifier too, which adds l*
(we average the M shared vectors so the width does not grow with M). `routing="full"` is the
earlier reading: the back-end reads the whole Z_m = [S_m ; T_m] and nothing bypasses it.

Optimizer (`pmr_optimizer`): PMR Table 8 trains every model with one main optimizer and says
"PMR use a additional SGD optimizer, with lr = 2.5e-4, momentum = 0.9, weight decay = 1e-4".
"Additional" reads as a second optimizer on top of the main one, not instead of it: the
default `"main+sgd"` updates the PMR maps with the main optimizer (like every other
parameter) and, in the same step, with the extra SGD. `"sgd"` (the earlier reading: the PMR
maps get only the extra SGD, which on small data barely moves them) and `"main"` (no extra
SGD) stay selectable. The default is the paper's reading; the others are tested against it on
validation accuracy only (experiments/decisions.toml, records of experiments/pmr-optimizer.toml)
and it changes only to a reading that beats it on every data set.

Inference does only inference: in eval mode neither the reconstruction nor the preservation
loss is computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import FusionModel, ModelOutput, register_method
from pmrfusion.modules.heads import MLPHead
from pmrfusion.modules.reconfiguration import Reconfiguration, ReconfigurationOutput
from pmrfusion.objectives.preservation import preservation_loss
from pmrfusion.optim import OptimizerSpec

PMR_OPTIMIZERS = ("main+sgd", "sgd", "main")
ROUTINGS = ("g-structure", "full")


@dataclass
class PMRConfig:
    n: int = 4
    b: float = 0.5
    lam: float = 1.0  # weight of the preservation loss
    mapping: str = "linear"
    strict_reduction: str = "mean"  # "mean" (GMF code MSE) or "sum" (eq. 6 squared norm)
    hidden: int = 256
    dropout: float = 0.2
    # "main+sgd": main optimizer + the paper's additional SGD (lr 2.5e-4, momentum 0.9,
    # wd 1e-4) on the PMR maps; "sgd": only that SGD (earlier reading); "main": only the main one.
    pmr_optimizer: str = "main+sgd"
    # "g-structure": S_m -> classifier, T_m -> back-end (GMF G.3); "full": Z_m -> back-end.
    routing: str = "g-structure"


class Backend(nn.Module):
    """A fusion back-end: `encode(xs) -> (features, ModelOutput without logits)` and a `head`.

    `forward(xs, extra)` classifies [features ; extra] (extra: the G-structure's shared part).
    """

    head: nn.Module

    def encode(self, xs: list[Tensor]) -> tuple[Tensor, ModelOutput]:
        raise NotImplementedError

    def forward(self, xs: list[Tensor], extra: Tensor | None = None) -> ModelOutput:
        feats, out = self.encode(xs)
        out.logits = self.head(feats if extra is None else torch.cat([feats, extra], -1))
        return out

    def shared_summary(self, shared: list[Tensor]) -> Tensor:
        """Under the G-structure, the shared part the classifier reads: mean_m S_m (UMoE mixes the
        S_m through its MoE first)."""
        return torch.stack(shared).mean(0)


class ConcatBackend(Backend):
    """Concatenate the inputs -> MLP head (hidden = 0: linear classifier)."""

    def __init__(self, in_dims: list[int], num_classes: int, hidden: int, dropout: float, extra_dim: int = 0):
        super().__init__()
        self.feature_dim = sum(in_dims)
        self.head = MLPHead(self.feature_dim + extra_dim, num_classes, hidden, dropout)

    def encode(self, xs: list[Tensor]) -> tuple[Tensor, ModelOutput]:
        return torch.cat(xs, dim=-1), ModelOutput(logits=torch.empty(0))


class PMRFusion(FusionModel):
    """PMR block whose outputs feed a `Backend` according to `routing` (module docstring)."""

    def __init__(self, dims: dict[str, int], cfg: PMRConfig, preservation: str, backend: Backend):
        super().__init__(list(dims))
        if cfg.pmr_optimizer not in PMR_OPTIMIZERS:
            raise PMRFusionError(f"pmr_optimizer must be one of {PMR_OPTIMIZERS}, got {cfg.pmr_optimizer!r}")
        if cfg.routing not in ROUTINGS:
            raise PMRFusionError(f"routing must be one of {ROUTINGS}, got {cfg.routing!r}")
        self.pmr = Reconfiguration(
            list(dims.values()), cfg.n, cfg.b, cfg.mapping, gain=getattr(cfg, "srht_gain", True)
        )
        self.preservation = preservation
        self.strict_reduction = cfg.strict_reduction
        self.routing = cfg.routing
        self.backend = backend
        self.loss_weights = {"preserve": cfg.lam}
        has_params = any(True for _ in self.pmr.parameters())
        if cfg.pmr_optimizer != "main" and has_params:
            self.default_group_optimizers = {"pmr": OptimizerSpec(additional=cfg.pmr_optimizer == "main+sgd")}

    def backend_inputs(self, rec: ReconfigurationOutput) -> tuple[list[Tensor], Tensor | None]:
        """(back-end inputs, classifier extra): (T_m, mean S_m) or (Z_m, None)."""
        if self.routing == "full":
            return rec.fused, None
        return rec.specific, self.backend.shared_summary(rec.shared)

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        views = self.views(features)
        rec = self.pmr(views, reconstruct=self.training)
        out = self.backend(*self.backend_inputs(rec))
        if self.training:
            out.aux_losses["preserve"] = self.preservation_term(views, rec)
        return out

    def preservation_term(self, views: list[Tensor], rec: ReconfigurationOutput) -> Tensor:
        """L_preserve. SRHT (PMR appendix): sPMR in the SRHT domain (P_dis V_m vs Ĥ_m from the
        inverse maps), rPMR in the input domain (V_m vs V'_m); learned maps: V_m vs P_rec Z_m."""
        if self.pmr.invertible and self.preservation == "strict":
            target = [p(v) for p, v in zip(self.pmr.dissolve, views)]
            recovered = self.pmr.invert(rec.shared, rec.specific)
            return preservation_loss("strict", target, recovered, self.strict_reduction)
        return preservation_loss(self.preservation, views, rec.reconstructed, self.strict_reduction)

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"pmr": list(self.pmr.parameters())}

    @property
    def classifier_input_dim(self) -> int:
        """Width of the task classifier's input: D_F (+ l* under the G-structure)."""
        first = next(m for m in self.backend.head.modules() if isinstance(m, nn.Linear))
        return first.in_features


def backend_dims(dims: dict[str, int], routing: str) -> tuple[list[int], int]:
    """(back-end input widths, classifier extra width) for a routing."""
    l_star = min(dims.values())
    if routing == "full":
        return [d + l_star for d in dims.values()], 0
    if routing == "g-structure":
        return list(dims.values()), l_star
    raise PMRFusionError(f"routing must be one of {ROUTINGS}, got {routing!r}")


def _pmr_concat(preservation: str):
    def build(dims, num_classes, cfg: PMRConfig):
        in_dims, extra = backend_dims(dims, cfg.routing)
        backend = ConcatBackend(in_dims, num_classes, cfg.hidden, cfg.dropout, extra)
        return PMRFusion(dims, cfg, preservation, backend)

    return build


register_method("sg-concat", PMRConfig, "PMR (strict preservation) -> concat MLP head")(_pmr_concat("strict"))
register_method("rg-concat", PMRConfig, "PMR (relaxed preservation) -> concat MLP head")(
    _pmr_concat("relaxed")
)
