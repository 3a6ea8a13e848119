"""PMR reconfiguration block: dissolve -> dissociate -> concentrate, plus reconstruction.

For modalities m = 1..M with dims l_m, l* = min_m l_m and k = (m + 1) mod M:

    H_m = P_dis^m V_m                      in R^{n l_m}, split at b_m = floor(b n l_m)
    S_m = P_sh^m  H_k[:b_k]                in R^{l*}     (shared part, from the next modality)
    T_m = P_sp^m  H_m[b_m:]                in R^{l_m}    (specific part)
    Z_m = [S_m ; T_m]                      in R^{l_m + l*}
    V'_m = P_rec^m Z_m                     in R^{l_m}    (for the preservation loss)

The steps are exposed one by one (`dissolve_views`, `split`, `reconstruct`) so that composed
methods (e.g. the contrastive back-end, which needs the parts of "modality m alone") use the
block instead of re-implementing it.

With the parameter-free SRHT mapping (`mapping="srht"`) the block has no reconstruction
maps: V'_m is recovered through the inverse (adjoint) transforms, see `invert`, and a
diagonal gain on the dissolved features (`gain=True`, n l_m parameters per modality, init 1)
is the only trainable part on the task path, so that the preservation loss has something to
act on even when the views are frozen features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.modules.mappings import make_mapping


@dataclass
class ReconfigurationOutput:
    fused: list[Tensor]  # Z_m, (B, l_m + l*)
    reconstructed: list[Tensor]  # V'_m, (B, l_m); empty when not computed (inference)
    shared: list[Tensor]  # S_m, (B, l*)
    specific: list[Tensor]  # T_m, (B, l_m)
    dissolved: list[Tensor]  # H_m, (B, n l_m) (after the SRHT gain, if any)


class Reconfiguration(nn.Module):
    """The PMR block for any M >= 2 and unequal input dims (default n=4, b=0.5)."""

    def __init__(
        self, dims: Sequence[int], n: int = 4, b: float = 0.5, mapping: str = "linear", gain: bool = True
    ):
        super().__init__()
        dims = [int(d) for d in dims]
        if len(dims) < 2:
            raise PMRFusionError("PMR needs at least 2 modalities")
        if n < 1:
            raise PMRFusionError(f"PMR expansion n must be >= 1, got {n}")
        if not 0.0 < b < 1.0:
            raise PMRFusionError(f"PMR boundary b must lie in (0, 1), got {b}")
        self.dims = dims
        self.n = int(n)
        self.b = float(b)
        self.mapping = mapping
        self.l_star = min(dims)
        self.bounds = [math.floor(b * n * d) for d in dims]
        for d, bd in zip(dims, self.bounds):
            if bd < 1 or bd >= n * d:
                raise PMRFusionError(
                    f"PMR boundary floor(b*n*l) = {bd} leaves an empty part for l = {d} "
                    f"(n = {n}, b = {b}): raise n or move b"
                )
        M = len(dims)
        self.next = [(m + 1) % M for m in range(M)]
        self.prev = [(m - 1) % M for m in range(M)]  # S_prev[m] is made from H_m's shared half
        self.dissolve = nn.ModuleList(make_mapping(mapping, d, n * d) for d in dims)
        self.shared_maps = nn.ModuleList(
            make_mapping(mapping, self.bounds[self.next[m]], self.l_star) for m in range(M)
        )
        self.specific_maps = nn.ModuleList(
            make_mapping(mapping, n * d - bd, d) for d, bd in zip(dims, self.bounds)
        )
        self.invertible = mapping == "srht"
        if self.invertible:
            self.recon_maps = None
            self.gains = nn.ParameterList(nn.Parameter(torch.ones(n * d)) for d in dims) if gain else None
        else:
            self.recon_maps = nn.ModuleList(make_mapping(mapping, d + self.l_star, d) for d in dims)
            self.gains = None

    @property
    def out_dims(self) -> list[int]:
        return [d + self.l_star for d in self.dims]

    def dissolve_views(self, views: Sequence[Tensor]) -> list[Tensor]:
        """H_m = P_dis^m V_m (times the SRHT gain, when there is one)."""
        if len(views) != len(self.dims):
            raise PMRFusionError(f"PMR expects {len(self.dims)} views, got {len(views)}")
        dissolved = [p(v) for p, v in zip(self.dissolve, views)]
        if self.gains is not None:
            dissolved = [h * g for h, g in zip(dissolved, self.gains)]
        return dissolved

    def split(self, dissolved: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """(S_m, T_m): shared parts from the next modality's shared half, specific parts."""
        shared = [self.shared_maps[m](dissolved[k][:, : self.bounds[k]]) for m, k in enumerate(self.next)]
        specific = [p(h[:, bd:]) for p, h, bd in zip(self.specific_maps, dissolved, self.bounds)]
        return shared, specific

    def reconstruct(self, shared: Sequence[Tensor], specific: Sequence[Tensor]) -> list[Tensor]:
        """V'_m: P_rec^m Z_m for learned maps, the inverse transforms for SRHT."""
        if not self.invertible:
            return [p(torch.cat([s, t], -1)) for p, s, t in zip(self.recon_maps, shared, specific)]
        return [self.dissolve[m].inverse(h) for m, h in enumerate(self.invert(shared, specific))]

    def invert(self, shared: Sequence[Tensor], specific: Sequence[Tensor]) -> list[Tensor]:
        """SRHT only: Ĥ_m (SRHT domain) from Z through the adjoint maps. H_m's shared half went
        into S_{m-1}, its specific half into T_m."""
        if not self.invertible:
            raise PMRFusionError("only the SRHT block is inverted through its transforms")
        return [
            torch.cat(
                [
                    self.shared_maps[self.prev[m]].inverse(shared[self.prev[m]]),
                    self.specific_maps[m].inverse(t),
                ],
                -1,
            )
            for m, t in enumerate(specific)
        ]

    def forward(self, views: Sequence[Tensor], reconstruct: bool = True) -> ReconfigurationOutput:
        dissolved = self.dissolve_views(views)
        shared, specific = self.split(dissolved)
        fused = [torch.cat([s, t], dim=-1) for s, t in zip(shared, specific)]
        recon = self.reconstruct(shared, specific) if reconstruct else []
        return ReconfigurationOutput(fused, recon, shared, specific, dissolved)
