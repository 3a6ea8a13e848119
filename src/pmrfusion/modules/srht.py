"""Subsampled randomized Hadamard transform (SRHT): a parameter-free PMR mapping.

    y = sqrt(N / k) * S H D pad(x)

with D a diagonal of random signs (N), H the orthonormal Walsh-Hadamard matrix (N x N,
N = next power of two >= max(in, out)), S a subsample of k = out rows without replacement.
E||y||^2 = ||x||^2 over the subsample, and with k = N (no subsampling) the map is orthogonal,
so `SRHT.inverse` recovers x exactly. Signs and rows are buffers drawn from a seeded
`torch.Generator` (seed drawn from the global torch RNG when not given, so `torch.manual_seed`
makes them reproducible).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.modules.mappings import register_mapping
from pmrfusion.precision import float32


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


@functools.lru_cache(maxsize=32)
def hadamard(n: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> Tensor:
    """The n x n Sylvester Hadamard matrix (entries +-1, n a power of two), cached per dtype/device.
    Built outside inference mode, so that a first call under `torch.inference_mode()` does not cache
    a tensor that later training could not save for backward."""
    with torch.inference_mode(False):
        h = torch.ones(1, 1, dtype=dtype, device=device)
        while h.shape[0] < n:
            h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def fwht(x: Tensor, normalize: bool = True) -> Tensor:
    """Fast Walsh-Hadamard transform over the last dim (a power of two).

    Sylvester ordering, i.e. x @ scipy.linalg.hadamard(N) (divided by sqrt(N) when
    `normalize`, which makes it orthonormal and its own inverse). Computed as two small dense
    matmuls, H_N = H_a (x) H_b with a * b = N, a ~ sqrt(N): x reshaped to (a, b) per row becomes
    H_a X H_b, O(N sqrt N) multiply-adds in two GEMMs, several times faster than the log2(N)
    butterfly passes on CPU at these sizes.
    """
    n = x.shape[-1]
    if n & (n - 1) or n == 0:
        raise PMRFusionError(f"FWHT needs a power-of-two length, got {n}")
    k = n.bit_length() - 1
    a = 1 << (k // 2)
    b = n // a
    device = str(x.device)
    h_a, h_b = hadamard(a, x.dtype, device), hadamard(b, x.dtype, device)
    y = (torch.matmul(h_a, x.reshape(-1, a, b)) @ h_b).reshape(x.shape)
    return y / math.sqrt(n) if normalize else y


class SRHT(nn.Module):
    """in_dim -> out_dim SRHT; no learnable parameters."""

    def __init__(self, in_dim: int, out_dim: int, seed: int | None = None, subsample: bool = True):
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise PMRFusionError(f"SRHT dims must be >= 1, got {in_dim} -> {out_dim}")
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.size = next_pow2(max(in_dim, out_dim))
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        gen = torch.Generator().manual_seed(int(seed))
        signs = torch.randint(0, 2, (self.size,), generator=gen).float() * 2 - 1
        if subsample:
            rows = torch.randperm(self.size, generator=gen)[: self.out_dim].sort().values
        else:
            if self.out_dim != self.size:
                raise PMRFusionError("SRHT without subsampling needs out_dim == next power of two")
            rows = torch.arange(self.size)
        self.register_buffer("signs", signs)
        self.register_buffer("rows", rows)
        self.scale = math.sqrt(self.size / self.out_dim)

    @float32
    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_dim:
            raise PMRFusionError(f"SRHT expects last dim {self.in_dim}, got {x.shape[-1]}")
        pad = self.size - self.in_dim
        if pad:
            x = torch.nn.functional.pad(x, (0, pad))
        y = fwht(x * self.signs)
        return self.scale * y.index_select(-1, self.rows)

    @float32
    def inverse(self, y: Tensor) -> Tensor:
        """The adjoint (transpose): unbiased back-projection, exact inverse when out = N."""
        full = y.new_zeros(*y.shape[:-1], self.size)
        full[..., self.rows] = y * self.scale
        return (fwht(full) * self.signs)[..., : self.in_dim]

    def extra_repr(self) -> str:
        return f"in={self.in_dim}, out={self.out_dim}, N={self.size}"


register_mapping("srht", lambda i, o: SRHT(i, o))

__all__ = ["SRHT", "fwht", "hadamard", "next_pow2"]
