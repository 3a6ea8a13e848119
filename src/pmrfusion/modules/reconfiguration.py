"""PMR reconfiguration block: dissolve -> dissociate -> concentrate, plus reconstruction.

For modalities m = 1..M with dims l_m, l* = min_m l_m and k = (m + 1) mod M:

    H_m = P_dis^m V_m                      in R^{n l_m}, split at b_m = floor(b n l_m)
    S_m = P_sh^m  H_k[:b_k]                in R^{l*}     (shared part, from the next modality)
    T_m = P_sp^m  H_m[b_m:]                in R^{l_m}    (specific part)
    Z_m = [S_m ; T_m]                      in R^{l_m + l*}
    V'_m = P_rec^m Z_m                     in R^{l_m}    (for the preservation loss)
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
    reconstructed: list[Tensor]  # V'_m, (B, l_m)
    shared: list[Tensor]  # S_m, (B, l*)
    specific: list[Tensor]  # T_m, (B, l_m)


class Reconfiguration(nn.Module):
    """The PMR block for any M >= 2 and unequal input dims (default n=4, b=0.5)."""

    def __init__(self, dims: Sequence[int], n: int = 4, b: float = 0.5, mapping: str = "linear"):
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
        self.dissolve = nn.ModuleList(make_mapping(mapping, d, n * d) for d in dims)
        self.shared_maps = nn.ModuleList(
            make_mapping(mapping, self.bounds[self.next[m]], self.l_star) for m in range(M)
        )
        self.specific_maps = nn.ModuleList(
            make_mapping(mapping, n * d - bd, d) for d, bd in zip(dims, self.bounds)
        )
        self.recon_maps = nn.ModuleList(make_mapping(mapping, d + self.l_star, d) for d in dims)

    @property
    def out_dims(self) -> list[int]:
        return [d + self.l_star for d in self.dims]

    def forward(self, views: Sequence[Tensor]) -> ReconfigurationOutput:
        if len(views) != len(self.dims):
            raise PMRFusionError(f"PMR expects {len(self.dims)} views, got {len(views)}")
        dissolved = [p(v) for p, v in zip(self.dissolve, views)]
        shared = [self.shared_maps[m](dissolved[k][:, : self.bounds[k]]) for m, k in enumerate(self.next)]
        specific = [p(h[:, bd:]) for p, h, bd in zip(self.specific_maps, dissolved, self.bounds)]
        fused = [torch.cat([s, t], dim=-1) for s, t in zip(shared, specific)]
        reconstructed = [p(z) for p, z in zip(self.recon_maps, fused)]
        return ReconfigurationOutput(fused, reconstructed, shared, specific)
