"""IID's regularisers: distribution coherence L_dc and the informatic constraint L_ic.

L_dc (IID section "Wasserstein distribution coherence with RIP reduction"):
1. FFT each modality's representation z_m (B, D) along the feature axis.
2. Keep the d1 frequencies with the largest mean amplitude. The set is chosen once per batch over
   all modalities (detached), so that every modality is reduced into the same coordinates.
3. Map back with the inverse FFT and project with a fixed Gaussian matrix Phi (k x D) / sqrt(k).
   This is Psi = Phi F^-1, the RIP map.
4. Relaxed (unbalanced, KL-marginal) debiased Sinkhorn between every pair of modalities:
   geomloss ``SamplesLoss("sinkhorn", p=2, blur, reach, debias=True, backend="tensorized")``.
   This runs in the log domain with eps-scaling, so it does not underflow.
   The points are first divided by the detached RMS pairwise distance of the pair, which
   normalises the cost to about 1. So the loss cannot be lowered by shrinking the features, and
   the blur/reach have a fixed meaning.
L_dc is the mean over unordered pairs. The paper sums over ordered pairs; that is the same up to a
constant that beta absorbs. With this normalisation L_dc is O(1), so useful beta values are about
0.01-1, not the paper's 1e-10..1e-14 (which scale an unnormalised transport cost).

L_ic (variational form of max I(z; y) - sum_m I(z_m; y), with KL terms against collapse):
    L_ic = CE(g(z), y) - (1/M) sum_m mean_i min(CE(g(z_m)_i, y_i), log K)
           + KL(N_z || N(0, I)) + (1/M) sum_m KL(N_{z_m} || N(0, I))
g is the shared linear target mapping; N_z is the diagonal Gaussian fitted to the batch mean and
variance (KL averaged over dimensions). The unimodal term is capped at log K, the loss of a uniform
prediction, so it cannot diverge. This is our reading of the paper's variational form; the summary
we have does not print the exact equation.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.precision import float32


@lru_cache(maxsize=16)
def _sinkhorn(blur: float, reach: float | None, scaling: float):
    try:
        from geomloss import SamplesLoss
    except ImportError:  # pragma: no cover - optional dependency
        raise PMRFusionError(
            "distribution coherence needs geomloss: pip install geomloss"
        ) from None
    return SamplesLoss(
        "sinkhorn", p=2, blur=blur, reach=reach, scaling=scaling, debias=True, backend="tensorized"
    )


def rms_distance(x: Tensor, y: Tensor) -> Tensor:
    """Detached root-mean-square pairwise distance over the union of two point clouds."""
    pts = torch.cat([x, y]).detach()
    d2 = torch.cdist(pts, pts).pow(2)
    return d2.mean().sqrt().clamp_min(1e-8)


@float32
def relaxed_wasserstein(
    x: Tensor,
    y: Tensor,
    blur: float = 0.05,
    reach: float | None = 1.0,
    scaling: float = 0.7,
    normalise: bool = True,
) -> Tensor:
    """Debiased unbalanced Sinkhorn divergence between point clouds x (n, k) and y (m, k)."""
    if normalise:
        s = rms_distance(x, y)
        x, y = x / s, y / s
    return _sinkhorn(float(blur), None if reach is None else float(reach), float(scaling))(
        x.float().contiguous(), y.float().contiguous()
    )


class SpectralRIP(nn.Module):
    """FFT, keep the top-d1 amplitude frequencies, inverse FFT, fixed Gaussian projection to k."""

    def __init__(self, dim: int, d1: int = 16, k: int = 16, seed: int = 0):
        super().__init__()
        if d1 < 1 or k < 1:
            raise PMRFusionError(f"d1 and k must be >= 1, got d1={d1}, k={k}")
        self.dim, self.d1 = dim, d1
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("phi", torch.randn(k, dim, generator=gen) / math.sqrt(k))

    def forward(self, zs: list[Tensor]) -> list[Tensor]:
        spectra = [torch.fft.rfft(z.float(), dim=-1) for z in zs]
        amp = torch.stack([s.detach().abs().mean(0) for s in spectra]).mean(0)
        keep = torch.topk(amp, min(self.d1, amp.shape[0])).indices
        mask = torch.zeros_like(amp)
        mask[keep] = 1.0
        return [torch.fft.irfft(s * mask, n=self.dim, dim=-1) @ self.phi.T for s in spectra]


def coherence_loss(
    reduced: list[Tensor], blur: float = 0.05, reach: float | None = 1.0, scaling: float = 0.7
) -> Tensor:
    """Mean relaxed Wasserstein divergence over unordered pairs of modalities."""
    if len(reduced) < 2:
        return reduced[0].sum() * 0.0
    vals = [
        relaxed_wasserstein(reduced[a], reduced[b], blur, reach, scaling)
        for a in range(len(reduced))
        for b in range(a + 1, len(reduced))
    ]
    return torch.stack(vals).mean()


def gaussian_kl(z: Tensor) -> Tensor:
    """KL(N(mean, diag var) || N(0, I)) of the batch, averaged over dimensions."""
    mu = z.mean(0)
    var = z.var(0, unbiased=False).clamp_min(1e-6)
    return 0.5 * (var + mu.pow(2) - 1.0 - var.log()).mean()


def informatic_constraint(head: nn.Module, fused: Tensor, unimodal: list[Tensor], labels: Tensor) -> Tensor:
    """L_ic (see module docstring); `head` is the shared linear target mapping."""
    logits = head(fused)
    cap = math.log(logits.shape[-1])
    term = F.cross_entropy(logits, labels)
    uni = torch.stack(
        [F.cross_entropy(head(z), labels, reduction="none").clamp(max=cap).mean() for z in unimodal]
    ).mean()
    kl = gaussian_kl(fused) + torch.stack([gaussian_kl(z) for z in unimodal]).mean()
    return term - uni + kl


__all__ = [
    "SpectralRIP",
    "coherence_loss",
    "gaussian_kl",
    "informatic_constraint",
    "relaxed_wasserstein",
    "rms_distance",
]
