"""PMR back-ends: CMMP, Perceiver, MBT, UMoE (= sparse MoE + CMMP, as the PMR paper's rG-UMoE) and
its MoE-only ablation (alone and behind PMR as sg-X / rg-X), and the parameter-free SRHT variant
of PMR (sg-srht / rg-srht).

Every back-end is an `nn.Module` whose forward takes a list of per-modality tensors
(the raw views when used alone, the PMR outputs Z_m behind PMR) and returns a ModelOutput.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import pmrfusion.modules.srht  # noqa: F401  (registers the "srht" mapping)
from pmrfusion.methods.base import FusionModel, ModelOutput, register_method
from pmrfusion.methods.pmr import Backend, ConcatBackend, PMRConfig, PMRFusion, backend_dims
from pmrfusion.modules.bottleneck import BottleneckFusion
from pmrfusion.modules.heads import MLPHead
from pmrfusion.modules.moe import SparseMoE
from pmrfusion.modules.perceiver import Perceiver
from pmrfusion.modules.projections import ContrastiveProjector
from pmrfusion.objectives.contrastive import multi_info_nce
from pmrfusion.objectives.preservation import preservation_loss


@dataclass
class BackendConfig:
    hidden: int = 256  # classifier MLP hidden width
    dropout: float = 0.2
    # cmmp
    embed_dim: int = 64
    proj_hidden: int = 256  # 0: linear projections
    contrast_weight: float = 1.0
    probe_only: bool = False  # classifier reads a detached shared rep (purely contrastive embeddings)
    # perceiver / mbt
    token_dim: int = 64
    tokens_per_modality: int = 4
    num_latents: int = 8
    num_bottlenecks: int = 4
    depth: int = 2
    heads: int = 4
    attn_dropout: float = 0.1
    # moe / umoe (the MoE stage)
    num_experts: int = 4
    top_k: int = 2
    num_shared_experts: int = 1
    expert_hidden: int = 0  # 0: round(4/3 * l*) (SwiGLU equivalent of the 2 l* FFN; E.4: 20 l*^2)
    balance_weight: float = 0.01


@dataclass
class PMRBackendConfig(PMRConfig, BackendConfig):
    pass


@dataclass
class SRHTConfig(PMRConfig):
    mapping: str = "srht"
    # the only SRHT parameters: diagonal gains on H_m (n l_m each, see modules/reconfiguration.py);
    # False gives the strictly parameter-free block (its preservation then trains only encoders)
    srht_gain: bool = True


# ----------------------------------------------------------------------------- back-ends


class CMMPBackend(Backend):
    """CLIP-style: project every input to a shared space; symmetric InfoNCE (mean over pairs)
    as aux loss "contrastive"; classifier on the mean of the projections."""

    def __init__(
        self,
        in_dims: Sequence[int],
        names: Sequence[str],
        num_classes: int,
        cfg: BackendConfig,
        extra_dim: int = 0,
    ):
        super().__init__()
        self.names = list(names)
        self.projector = ContrastiveProjector(in_dims, cfg.embed_dim, cfg.proj_hidden)
        self.head = MLPHead(cfg.embed_dim + extra_dim, num_classes, cfg.hidden, cfg.dropout)
        self.probe_only = cfg.probe_only

    def project(self, xs: Sequence[Tensor]) -> list[Tensor]:
        return self.projector(xs)

    def encode(
        self, xs: list[Tensor], contrast: Sequence[Tensor] | None = None
    ) -> tuple[Tensor, ModelOutput]:
        """`contrast`: the per-modality embeddings for the InfoNCE term (default: the projections)."""
        projected = self.project(xs)
        rep = torch.stack(projected).mean(0)
        emb = list(contrast) if contrast is not None else projected
        out = ModelOutput(
            logits=torch.empty(0),
            embeddings=dict(zip(self.names, emb)),
            aux_losses={"contrastive": multi_info_nce(emb, self.projector.logit_scale)},
        )
        return (rep.detach() if self.probe_only else rep), out

    def forward(
        self, xs: list[Tensor], extra: Tensor | None = None, contrast: Sequence[Tensor] | None = None
    ) -> ModelOutput:
        feats, out = self.encode(xs, contrast)
        out.logits = self.head(feats if extra is None else torch.cat([feats, extra], -1))
        return out


class TokenEncoderBackend(Backend):
    """A token encoder (Perceiver or MBT) whose (B, token_dim) summary is the fused feature."""

    def __init__(self, encoder: nn.Module, num_classes: int, cfg: BackendConfig, extra_dim: int = 0):
        super().__init__()
        self.encoder = encoder
        self.head = MLPHead(cfg.token_dim + extra_dim, num_classes, cfg.hidden, cfg.dropout)

    def encode(self, xs: list[Tensor]) -> tuple[Tensor, ModelOutput]:
        return self.encoder(xs), ModelOutput(logits=torch.empty(0))


def perceiver_backend(
    in_dims: Sequence[int], num_classes: int, cfg: BackendConfig, extra_dim: int = 0
) -> TokenEncoderBackend:
    encoder = Perceiver(
        in_dims,
        cfg.num_latents,
        cfg.token_dim,
        cfg.tokens_per_modality,
        cfg.depth,
        cfg.heads,
        cfg.attn_dropout,
    )
    return TokenEncoderBackend(encoder, num_classes, cfg, extra_dim)


def mbt_backend(
    in_dims: Sequence[int], num_classes: int, cfg: BackendConfig, extra_dim: int = 0
) -> TokenEncoderBackend:
    encoder = BottleneckFusion(
        in_dims,
        cfg.token_dim,
        cfg.tokens_per_modality,
        cfg.num_bottlenecks,
        cfg.depth,
        cfg.heads,
        cfg.attn_dropout,
    )
    return TokenEncoderBackend(encoder, num_classes, cfg, extra_dim)


def moe_hidden(l_star: int, cfg: BackendConfig) -> int:
    return cfg.expert_hidden if cfg.expert_hidden > 0 else max(1, round(4 * l_star / 3))


class _SparseMoEStage:
    """The sparse-MoE stage of `MoEBackend` and `UMoEBackend`: a residual MoE on l*-wide tokens,
    x + MoE(norm(x)), where `norm` is an RMSNorm (UMoE: the pre-norm residual block of the
    transformer MoE it follows) or the identity (`moe`, as before issue 21).

    With `shared_dim` = l* (PMR, full routing) the first l* entries of every Z_m (S_m, PMR's
    shared output) are the tokens and the specific parts pass through; otherwise (alone, or
    PMR's G-structure on T_m) every input is first projected linearly to l* = min dims.
    """

    inputs: nn.ModuleList | None
    moe: SparseMoE
    norm: nn.Module | None

    def moe_residual(self, tokens: Tensor) -> Tensor:
        """tokens + MoE(norm(tokens)) for (B, M, l*) tokens; sets `moe.aux_loss`."""
        return tokens + self.moe(tokens if self.norm is None else self.norm(tokens))

    @staticmethod
    def mixed_widths(in_dims: Sequence[int], shared_dim: int | None) -> list[int]:
        """The width of each modality's view after the stage."""
        return [min(in_dims)] * len(in_dims) if shared_dim is None else list(in_dims)

    def _build_stage(
        self, in_dims: Sequence[int], cfg: BackendConfig, shared_dim: int | None, prenorm: bool = False
    ) -> None:
        """Create `inputs` (None under full routing), `moe` and, with `prenorm`, the RMSNorm in
        front of it (after `nn.Module.__init__`)."""
        self.shared_dim = shared_dim
        if shared_dim is None:
            d = min(in_dims)
            self.inputs = nn.ModuleList(nn.Linear(i, d) for i in in_dims)
        else:
            d = shared_dim
            self.inputs = None
        self.moe = SparseMoE(d, moe_hidden(d, cfg), cfg.num_experts, cfg.top_k, cfg.num_shared_experts)
        self.norm = nn.RMSNorm(d) if prenorm else None

    def mix(self, xs: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """(mixed tokens (B, M, l*), the parts that pass through: [T_m] under full routing, else [])."""
        if self.inputs is None:
            tokens = torch.stack([x[:, : self.shared_dim] for x in xs], 1)
            rest = [x[:, self.shared_dim :] for x in xs]
        else:
            tokens = torch.stack([p(x) for p, x in zip(self.inputs, xs)], 1)
            rest = []
        return self.moe_residual(tokens), rest


class MoEBackend(_SparseMoEStage, Backend):
    """`moe`: the sparse-MoE stage, then concat -> MLP head; no contrastive term. Not a method of
    the PMR paper as such (its "MoE" baseline has no stated head): the MoE stage of the paper's
    UMoE without its CMMP head, kept as an ablation of `umoe` (it was called `umoe` before)."""

    def __init__(
        self,
        in_dims: Sequence[int],
        num_classes: int,
        cfg: BackendConfig,
        shared_dim: int | None,
        extra_dim: int = 0,
    ):
        super().__init__()
        self._build_stage(in_dims, cfg, shared_dim)
        width = sum(self.mixed_widths(in_dims, shared_dim))
        self.head = MLPHead(width + extra_dim, num_classes, cfg.hidden, cfg.dropout)

    def encode(self, xs: list[Tensor]) -> tuple[Tensor, ModelOutput]:
        mixed, rest = self.mix(xs)
        feats = torch.cat([mixed.flatten(1), *rest], -1)
        return feats, ModelOutput(logits=torch.empty(0), aux_losses={"load_balance": self.moe.aux_loss})


class UMoEBackend(_SparseMoEStage, CMMPBackend):
    """`umoe`, the PMR paper's rG-UMoE = rG-CMMP + a sparse MoE "at the shared output of PMR": the
    CMMP back-end (per-modality projections to a shared space, symmetric InfoNCE "contrastive",
    classifier on the mean projection) with the residual sparse-MoE stage on PMR's shared parts
    S_m (aux "load_balance"), pre-normed: S_m + MoE(RMSNorm(S_m)). The paper draws no norm; the
    transformer MoE block it follows has one, and without it the SwiGLU experts (quadratic in
    their input's scale) see the unnormalised S_m and the task loss spikes in training. Where the
    MoE sits (`placement`):

    - "shared" (PMR, G-structure): the S_m (l*-wide tokens) are mixed, and their mean is the
      shared part the classifier reads with the CMMP features; CMMP reads T_m as in rg-cmmp.
    - "z" (PMR, full routing): the S_m part of every Z_m is mixed; CMMP reads [mixed S_m ; T_m].
    - "views" (alone, no PMR, so no shared output): every view is mapped linearly to l* = min dims
      and mixed; CMMP reads the mixed tokens.
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        names: Sequence[str],
        num_classes: int,
        cfg: BackendConfig,
        placement: str,
        l_star: int,
        extra_dim: int = 0,
    ):
        if placement not in UMOE_PLACEMENTS:
            raise ValueError(placement)
        shared_dim = None if placement == "views" else l_star
        widths = list(in_dims) if placement == "shared" else self.mixed_widths(in_dims, shared_dim)
        super().__init__(widths, names, num_classes, cfg, extra_dim)
        self.placement = placement
        self._build_stage(in_dims, cfg, shared_dim, prenorm=True)  # "shared": no input maps

    def mixed_views(self, xs: Sequence[Tensor]) -> list[Tensor]:
        """CMMP's inputs: the views after the MoE ("views", "z") or the T_m unchanged ("shared")."""
        if self.placement == "shared":
            return list(xs)
        mixed, rest = self.mix(xs)
        if not rest:
            return list(mixed.unbind(1))
        return [torch.cat([mixed[:, i], r], -1) for i, r in enumerate(rest)]

    def shared_summary(self, shared: Sequence[Tensor]) -> Tensor:
        """Under the G-structure: the mean of the MoE-mixed S_m (the classifier's shared part)."""
        return self.moe_residual(torch.stack(list(shared), 1)).mean(1)

    def project(self, xs: Sequence[Tensor]) -> list[Tensor]:
        return self.projector(self.mixed_views(xs))

    def encode(
        self, xs: list[Tensor], contrast: Sequence[Tensor] | None = None
    ) -> tuple[Tensor, ModelOutput]:
        # the MoE's last pass: shared_summary ("shared") or this project() on xs ("views", "z")
        feats, out = super().encode(xs, contrast)
        out.aux_losses["load_balance"] = self.moe.aux_loss
        return feats, out


UMOE_PLACEMENTS = ("shared", "z", "views")


# ----------------------------------------------------------------------------- composed models


class BackendFusion(FusionModel):
    """A back-end used alone on the raw views."""

    def __init__(self, dims: dict[str, int], backend: nn.Module, loss_weights: dict[str, float]):
        super().__init__(list(dims))
        self.backend = backend
        self.loss_weights = dict(loss_weights)

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        return self.backend(self.views(features))


class PMRContrastive(PMRFusion):
    """PMR -> CMMP (or UMoE, whose CMMP head reads the MoE-mixed Z_m) with `routing="full"`. The
    classifier reads the projections of the full Z_m.
    The retrieval embedding of modality m (and the InfoNCE term) is computed from modality m
    alone (the others zeroed, as in the missing protocol): the mean projection of the Z_j that
    PMR makes from V_m only. With both views present, Z_m's shared part comes from the other
    modality, so an embedding of the full Z_m would leak the paired sample into the query.
    (Under the G-structure the back-end reads T_m, which depends on V_m alone: no such issue,
    and the plain `PMRFusion` forward is used.)"""

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        if self.routing != "full":
            return super().forward(features, present)
        views = self.views(features)
        pmr = self.pmr
        M = len(views)
        # one pass for the full inputs and one (a single row) for all-zero inputs; the
        # "modality m alone" outputs mix the two without recomputing the large maps
        S, T = pmr.split(pmr.dissolve_views(views))
        S0, T0 = pmr.split(pmr.dissolve_views([v.new_zeros(1, v.shape[1]) for v in views]))
        fused = [torch.cat([s, t], -1) for s, t in zip(S, T)]
        own = []
        for m in range(M):
            alone = [
                torch.cat(
                    [
                        S[j] if pmr.next[j] == m else S0[j].expand_as(S[j]),
                        T[j] if j == m else T0[j].expand_as(T[j]),
                    ],
                    -1,
                )
                for j in range(M)
            ]
            own.append(torch.stack(self.backend.project(alone)).mean(0))
        out = self.backend(fused, contrast=own)
        if self.training:
            out.aux_losses["preserve"] = preservation_loss(
                self.preservation, views, pmr.reconstruct(S, T), self.strict_reduction
            )
        return out


def _backend_cfg(cfg) -> BackendConfig:
    names = {f.name for f in dataclasses.fields(BackendConfig)}
    return BackendConfig(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in names})


def _make_backend(
    kind: str, in_dims, names, num_classes, cfg: BackendConfig, shared_dim, extra_dim=0, l_star=None
):
    """`shared_dim`: l* under full routing (else None); `l_star`: PMR's l* (None: no PMR)."""
    if kind == "cmmp":
        return CMMPBackend(in_dims, names, num_classes, cfg, extra_dim), {"contrastive": cfg.contrast_weight}
    if kind == "perceiver":
        return perceiver_backend(in_dims, num_classes, cfg, extra_dim), {}
    if kind == "mbt":
        return mbt_backend(in_dims, num_classes, cfg, extra_dim), {}
    if kind == "moe":
        backend = MoEBackend(in_dims, num_classes, cfg, shared_dim, extra_dim)
        return backend, {"load_balance": cfg.balance_weight}
    if kind == "umoe":
        placement = "views" if l_star is None else ("z" if shared_dim is not None else "shared")
        l_star = min(in_dims) if l_star is None else l_star
        backend = UMoEBackend(in_dims, names, num_classes, cfg, placement, l_star, extra_dim)
        return backend, {"contrastive": cfg.contrast_weight, "load_balance": cfg.balance_weight}
    raise ValueError(kind)


def _standalone(kind: str):
    def build(dims, num_classes, cfg: BackendConfig):
        backend, weights = _make_backend(kind, list(dims.values()), list(dims), num_classes, cfg, None)
        return BackendFusion(dims, backend, weights)

    return build


def _with_pmr(kind: str, preservation: str):
    def build(dims, num_classes, cfg: PMRBackendConfig):
        in_dims, extra = backend_dims(dims, cfg.routing)
        shared_dim = min(dims.values()) if cfg.routing == "full" else None
        bcfg = _backend_cfg(cfg)
        backend, weights = _make_backend(
            kind, in_dims, list(dims), num_classes, bcfg, shared_dim, extra, min(dims.values())
        )
        cls = PMRContrastive if kind in _CONTRASTIVE else PMRFusion
        model = cls(dims, cfg, preservation, backend)
        model.loss_weights.update(weights)
        return model

    return build


def _srht(preservation: str):
    def build(dims, num_classes, cfg: SRHTConfig):
        in_dims, extra = backend_dims(dims, cfg.routing)
        backend = ConcatBackend(in_dims, num_classes, cfg.hidden, cfg.dropout, extra)
        return PMRFusion(dims, cfg, preservation, backend)

    return build


_DESCRIPTIONS = {
    "cmmp": "CLIP-style projections to a shared space, symmetric InfoNCE aux, classifier on their mean",
    "perceiver": "Perceiver: latent array cross-attending to per-modality vector tokens",
    "mbt": "MBT: per-modality transformer layers exchanging only bottleneck tokens",
    "umoe": "UMoE (PMR paper): pre-normed sparse MoE (4 routed top-k SwiGLU experts + 1 shared, balance aux)"
    " on the l*-wide shared parts S_m (alone: maps of the views), then the CMMP head (projections,"
    " InfoNCE, classifier on their mean)",
    "moe": "sparse MoE on the l* tokens -> concat MLP head, no contrastive term (UMoE without its CMMP"
    " head; the 'umoe' of before issue 21)",
}
_CONTRASTIVE = ("cmmp", "umoe")  # back-ends with CMMP's InfoNCE: PMRContrastive behind PMR
_PRES = {"sg": ("strict", "strict"), "rg": ("relaxed", "relaxed")}
# the BackendConfig fields each back-end reads (besides the head's hidden and dropout)
_TOKENS = ("token_dim", "tokens_per_modality", "depth", "heads", "attn_dropout")
_KIND_OPTIONS = {
    "cmmp": ("embed_dim", "proj_hidden", "contrast_weight", "probe_only"),
    "perceiver": ("num_latents", *_TOKENS),
    "mbt": ("num_bottlenecks", *_TOKENS),
    "moe": ("num_experts", "top_k", "num_shared_experts", "expert_hidden", "balance_weight"),
}
_KIND_OPTIONS["umoe"] = (*_KIND_OPTIONS["cmmp"], *_KIND_OPTIONS["moe"])
_PMR_FIELDS = tuple(f.name for f in dataclasses.fields(PMRConfig))

for _kind, _desc in _DESCRIPTIONS.items():
    _own = ("hidden", "dropout", *_KIND_OPTIONS[_kind])
    register_method(_kind, BackendConfig, _desc, options=_own)(_standalone(_kind))
    for _prefix, (_pres, _word) in _PRES.items():
        register_method(
            f"{_prefix}-{_kind}", PMRBackendConfig, f"PMR ({_word} preservation) -> {_kind}",
            options=(*_PMR_FIELDS, *_own),
        )(_with_pmr(_kind, _pres))  # fmt: skip
    del _prefix, _pres, _word
register_method("sg-srht", SRHTConfig, "PMR with parameter-free SRHT maps (strict) -> concat head")(
    _srht("strict")
)
register_method("rg-srht", SRHTConfig, "PMR with parameter-free SRHT maps (relaxed) -> concat head")(
    _srht("relaxed")
)

__all__ = [
    "BackendConfig",
    "BackendFusion",
    "CMMPBackend",
    "MoEBackend",
    "TokenEncoderBackend",
    "mbt_backend",
    "PMRBackendConfig",
    "PMRContrastive",
    "perceiver_backend",
    "SRHTConfig",
    "UMoEBackend",
]
