"""Shared/specific disentanglement baselines: ``misa`` (Hazarika et al., ACM MM 2020) and ``drfuse``
(Yao et al., AAAI 2024), for M >= 2 feature vectors of any dimensions.

``misa``: per-modality projection u_m = LayerNorm(ReLU(W_m x_m)) to ``hidden``; one *shared* encoder
E_c (Linear + Sigmoid, same weights for every modality) gives the invariant h^c_m; per-modality
private encoders E^p_m give the specific h^p_m; a decoder per modality reconstructs u_m from
h^c_m + h^p_m. The 2M vectors go through a one-layer Transformer encoder (2 heads, feed-forward
``feedforward`` = 2048 and dropout ``transformer_dropout`` = 0.1: the official layer's PyTorch
defaults), are concatenated and classified by an MLP (dropout ``dropout`` = 0.5, the official
default). Auxiliary losses (``loss_weights``, MISA's defaults): ``sim`` = CMD (5 moments) between
the invariant parts, averaged over modality pairs (weight 1.0); ``diff`` = soft orthogonality
(row norms detached, as the official ``DiffLoss``) between h^c_m and h^p_m for every m and between
h^p_i and h^p_j for every pair, summed (weight 0.3); ``recon`` = mean over modalities of the MSE
between reconstruction and u_m (weight 1.0).

Differences from the official MISA code (declare-lab/MISA): the utterance encoders (BERT / LSTMs)
are replaced by the linear projection of the given features; the fusion MLP maps 2M*hidden ->
M*hidden -> classes (MISA: 6h -> 3h -> out for three modalities); MISA's CMD is averaged over the
three pairs, here over all M(M-1)/2 pairs; no domain-adversarial variant (MISA's default is CMD).
Absent modalities (``present`` False) are zeroed, their two tokens are masked out of the
Transformer, and every auxiliary term uses only rows where the modalities involved are present.

``drfuse``: per-modality *shared* and *distinct* encoders (MLPs to ``hidden``); every shared part
then goes through the official shared projection (one MLP for all modalities: h -> 2h -> h -> h,
ReLU between). The fused shared representation is the mean of the projected shared parts of the
present modalities; tokens [distinct_1, ..., distinct_M, shared] go through DrFuse's disease- (here
class-) wise attention: a query (mean over present tokens), one key projection per class and a
value projection, softmax over the present tokens per class, and class logit c = w_c . (attended
value for class c) + b_c. Auxiliary losses, summed as the official code sums them: ``align`` = the
official JSD between sigmoid(shared_i) and sigmoid(shared_j) (element-wise, rows not renormalised),
mean over rows where both are present, summed over pairs; ``distinct`` = |cos(shared_m,
distinct_m)|, mean over present rows, summed over modalities; ``pred_views`` = CE of each
modality's distinct head, mean over present rows, summed over modalities; ``pred_shared`` = CE of
the shared head. All weights 1 by default (the official lambdas).

Simplifications of DrFuse (dorothy-yao/drfuse, written for EHR + chest X-ray, multi-label sigmoid):
M >= 2 feature vectors instead of an EHR transformer and a ResNet; softmax cross-entropy over classes
instead of per-disease BCE; the shared fusion is the masked mean of shared parts (the code combines
two modalities with a logsumexp formula and falls back to the EHR part when the image is missing);
the query is the mean over present tokens of all modalities (the code's EHR-or-pair rule); the JSD
leaves out rows where a modality is absent (the code sums it over every row and divides by the
paired count); the attention-ranking auxiliary loss of the paper is not implemented. The full list:
docs/deviations.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.methods.base import WIDTH, Batch, FusionModel, ModelOutput, register_method, zero_absent
from pmrfusion.objectives.disentangled import central_moment_discrepancy, jensen_shannon, soft_orthogonality


@dataclass
class MISAConfig:
    hidden: int = field(default=128, metadata=WIDTH)
    dropout: float = 0.5  # the fusion head's (official --dropout 0.5)
    heads: int = 2
    # the fusion Transformer layer: the official nn.TransformerEncoderLayer(hidden, 2) keeps
    # PyTorch's defaults, feed-forward width 2048 and dropout 0.1, whatever `hidden` is
    feedforward: int = field(default=2048, metadata=WIDTH)
    transformer_dropout: float = field(default=0.1, metadata={"range": (0.0, 1.0, True, False)})
    sim_weight: float = 1.0
    diff_weight: float = 0.3
    recon_weight: float = 1.0
    cmd_moments: int = 5


def _rows(present: Tensor | None, *modalities: int) -> Tensor | None:
    """Rows where all the given modalities are present (None: all rows)."""
    if present is None:
        return None
    return present[:, list(modalities)].all(1)


def _take(x: Tensor, rows: Tensor | None) -> Tensor:
    return x if rows is None else x[rows]


class MISA(FusionModel):
    def __init__(self, dims: dict[str, int], num_classes: int, cfg: MISAConfig):
        super().__init__(list(dims))
        h, m = cfg.hidden, len(dims)
        self.cfg = cfg
        self.project = nn.ModuleDict(
            {k: nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.LayerNorm(h)) for k, d in dims.items()}
        )
        self.shared = nn.Sequential(nn.Linear(h, h), nn.Sigmoid())
        self.private = nn.ModuleDict({k: nn.Sequential(nn.Linear(h, h), nn.Sigmoid()) for k in dims})
        self.recon = nn.ModuleDict({k: nn.Linear(h, h) for k in dims})
        layer = nn.TransformerEncoderLayer(
            h, cfg.heads, dim_feedforward=cfg.feedforward, dropout=cfg.transformer_dropout, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Sequential(
            nn.Linear(2 * m * h, m * h), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(m * h, num_classes)
        )
        self.loss_weights = {"sim": cfg.sim_weight, "diff": cfg.diff_weight, "recon": cfg.recon_weight}

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        feats = zero_absent(features, present, self.modalities)
        utt = [self.project[k](x) for k, x in zip(self.modalities, self.views(feats))]
        inv = [self.shared(u) for u in utt]
        spec = [self.private[k](u) for k, u in zip(self.modalities, utt)]
        tokens = torch.stack(spec + inv, dim=1)  # (B, 2M, h)
        mask = None
        if present is not None and not bool(present.all()):
            mask = ~torch.cat([present, present], dim=1)  # True = ignore
        fused = self.transformer(tokens, src_key_padding_mask=mask)
        if mask is not None:
            fused = fused.masked_fill(mask.unsqueeze(-1), 0.0)
        logits = self.head(fused.flatten(1))
        aux = self._aux(utt, inv, spec, present)
        emb = {f"invariant:{k}": v for k, v in zip(self.modalities, inv)}
        emb.update({f"specific:{k}": v for k, v in zip(self.modalities, spec)})
        return ModelOutput(logits=logits, embeddings=emb, aux_losses=aux)

    def _aux(self, utt: list[Tensor], inv: list[Tensor], spec: list[Tensor], present: Tensor | None):
        m = len(utt)
        zero = utt[0].new_zeros(())
        sim, diff, recon = zero, zero, zero
        pairs = list(itertools.combinations(range(m), 2))
        for i, j in pairs:
            rows = _rows(present, i, j)
            if rows is None or int(rows.sum()) > 1:
                sim = sim + central_moment_discrepancy(
                    _take(inv[i], rows), _take(inv[j], rows), self.cfg.cmd_moments
                )
                diff = diff + soft_orthogonality(_take(spec[i], rows), _take(spec[j], rows))
        sim = sim / max(len(pairs), 1)
        for i in range(m):
            rows = _rows(present, i)
            if rows is None or int(rows.sum()) > 1:
                diff = diff + soft_orthogonality(_take(spec[i], rows), _take(inv[i], rows))
                rec = self.recon[self.modalities[i]](spec[i] + inv[i])
                recon = recon + F.mse_loss(_take(rec, rows), _take(utt[i], rows))
        return {"sim": sim, "diff": diff, "recon": recon / m}


@dataclass
class DrFuseConfig:
    hidden: int = field(default=128, metadata=WIDTH)
    dropout: float = 0.2
    align_weight: float = 1.0
    distinct_weight: float = 1.0
    pred_views_weight: float = 1.0
    pred_shared_weight: float = 1.0


def _mlp(d: int, h: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout), nn.Linear(h, h))


class DrFuse(FusionModel):
    def __init__(self, dims: dict[str, int], num_classes: int, cfg: DrFuseConfig):
        super().__init__(list(dims))
        h = cfg.hidden
        self.cfg = cfg
        self.num_classes = num_classes
        self.shared_enc = nn.ModuleDict({k: _mlp(d, h, cfg.dropout) for k, d in dims.items()})
        self.distinct_enc = nn.ModuleDict({k: _mlp(d, h, cfg.dropout) for k, d in dims.items()})
        # the official shared projection, one for all modalities: h -> 2h -> h -> h
        self.shared_project = nn.Sequential(
            nn.Linear(h, 2 * h), nn.ReLU(), nn.Linear(2 * h, h), nn.ReLU(), nn.Linear(h, h)
        )
        self.view_heads = nn.ModuleDict({k: nn.Linear(h, num_classes) for k in dims})
        self.shared_head = nn.Linear(h, num_classes)
        self.attn_proj = nn.Linear(h, (2 + num_classes) * h)  # query, value, one key per class
        self.final = nn.Linear(h, num_classes)  # row c scores the class-c representation
        self.loss_weights = {
            "align": cfg.align_weight,
            "distinct": cfg.distinct_weight,
            "pred_views": cfg.pred_views_weight,
            "pred_shared": cfg.pred_shared_weight,
        }

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        feats = zero_absent(features, present, self.modalities)
        xs = self.views(feats)
        shared = self.shared_project(
            torch.stack([self.shared_enc[k](x) for k, x in zip(self.modalities, xs)], 1)
        )  # (B, M, h)
        distinct = torch.stack([self.distinct_enc[k](x) for k, x in zip(self.modalities, xs)], 1)
        b, m, h = shared.shape
        pres = torch.ones(b, m, dtype=torch.bool, device=shared.device) if present is None else present.bool()
        w = pres.to(shared.dtype).unsqueeze(-1)
        fused_shared = (shared * w).sum(1) / w.sum(1).clamp_min(1.0)
        tokens = torch.cat([distinct, fused_shared.unsqueeze(1)], 1)  # (B, M + 1, h)
        token_present = torch.cat([pres, pres.new_ones(b, 1)], 1)
        proj = self.attn_proj(tokens).view(b, m + 1, 2 + self.num_classes, h)
        q, v, k = proj[:, :, 0], proj[:, :, 1], proj[:, :, 2:]  # k: (B, T, K, h)
        tw = token_present.to(q.dtype).unsqueeze(-1)
        query = (q * tw).sum(1) / tw.sum(1)
        scores = torch.einsum("bd,btkd->bkt", query, k) / math.sqrt(h)
        scores = scores.masked_fill(~token_present.unsqueeze(1), float("-inf"))
        attn = scores.softmax(-1)  # (B, K, T)
        per_class = torch.einsum("bkt,btd->bkd", attn, v)
        logits = (per_class * self.final.weight).sum(-1) + self.final.bias
        view_logits = {k_: self.view_heads[k_](distinct[:, i]) for i, k_ in enumerate(self.modalities)}
        out = ModelOutput(
            logits=logits,
            modality_logits=view_logits,
            weights={k_: attn[:, :, i].mean(1) for i, k_ in enumerate(self.modalities)},
            embeddings={"shared": fused_shared},
            extras={"shared": shared, "distinct": distinct, "shared_logits": self.shared_head(fused_shared)},
        )
        return out

    def auxiliary_losses(self, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        """The official code's sums: ``align`` = sum over modality pairs of the mean JSD over rows
        where both are present; ``distinct`` = sum over modalities of the mean |cos| over present
        rows; ``pred_views`` = sum over modalities of the mean CE over present rows;
        ``pred_shared`` = mean CE of the shared head."""
        shared, distinct = output.extras["shared"], output.extras["distinct"]
        m = shared.shape[1]
        pres = batch.present.to(shared.device).to(shared.dtype)  # (B, M)

        def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
            return (values * mask).sum() / mask.sum().clamp_min(1.0)

        sig = shared.sigmoid()
        align = shared.new_zeros(())
        for i, j in itertools.combinations(range(m), 2):
            align = align + masked_mean(jensen_shannon(sig[:, i], sig[:, j]), pres[:, i] * pres[:, j])
        cos = F.cosine_similarity(shared, distinct, dim=-1).abs()  # (B, M)
        per_view = torch.stack(
            [
                F.cross_entropy(output.modality_logits[k], batch.labels, reduction="none")
                for k in self.modalities
            ],
            1,
        )
        return {
            "align": align,
            "distinct": torch.stack([masked_mean(cos[:, i], pres[:, i]) for i in range(m)]).sum(),
            "pred_views": torch.stack([masked_mean(per_view[:, i], pres[:, i]) for i in range(m)]).sum(),
            "pred_shared": F.cross_entropy(output.extras["shared_logits"], batch.labels),
        }


@register_method(
    "misa", MISAConfig, "MISA: invariant/specific subspaces, CMD + orthogonality + reconstruction"
)
def _misa(dims, num_classes, cfg):
    return MISA(dims, num_classes, cfg)


@register_method(
    "drfuse", DrFuseConfig, "DrFuse: shared/distinct parts, class-wise attention over modalities",
    classification_only="its class-wise attention and per-view predictions need class logits",
)
def _drfuse(dims, num_classes, cfg):
    return DrFuse(dims, num_classes, cfg)


__all__ = ["MISA", "DrFuse", "DrFuseConfig", "MISAConfig"]
