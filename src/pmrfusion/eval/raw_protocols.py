"""Robustness protocols on raw inputs (pixels, waveforms), for models with encoders.

Same names, seeds and cell probabilities as `pmrfusion.eval.protocols` (whose helpers are
reused): each (sample, modality) cell is corrupted with p = 0.5.
- clean; missing (every non-empty proper subset present; absent inputs zeroed and marked
  absent, so the composed model zeroes their encoder outputs);
- naturally missing modalities (`present`, the test rows' presence): as on feature vectors (see
  `eval.protocols`): "clean" is the data as given, every condition's mask is the data's AND the
  protocol's, the missing subsets drop only present modalities, noise never touches an absent
  cell (absent inputs stay zero);
- gaussian:eps: x + sqrt(eps) * sigma_m * N(0, 1), sigma_m the training rows' std of the raw
  input (pixel std for images, waveform std for audio, per-feature std for vectors): variance
  eps on the standardised scale, as on feature vectors; token ids (kind "tokens") have no
  additive noise and stay clean;
- salt_pepper:eps (images only): round(eps/10 * C*H*W) pixels of a corrupted image set to the
  training minimum or maximum pixel value, each with probability 1/2.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from pmrfusion.eval.protocols import (
    GAUSSIAN_EPS,
    SALT_PEPPER_EPS,
    Condition,
    check_protocol,
    corrupt_mask,
    generator,
    keep_present,
    missing_subsets,
    register_protocol,
    salt_pepper_mask,
    subset_name,
)
from pmrfusion.modules.frontends import ModalityStats

RAW_PROTOCOLS = ("clean", "missing", "gaussian", "salt_pepper")


def check_raw_protocol(protocol: str) -> None:
    check_protocol(protocol, raw=True)


def _cell(mask: Tensor, i: int, x: Tensor) -> Tensor:
    return mask[:, i].reshape(-1, *([1] * (x.ndim - 1)))


def _all(n: int, m: int) -> Tensor:
    return torch.ones(n, m, dtype=torch.bool)


def raw_conditions(
    protocol: str,
    features: dict[str, Tensor],
    kinds: dict[str, str],
    stats: dict[str, ModalityStats],
    seed: int,
    gaussian_eps=GAUSSIAN_EPS,
    salt_pepper_eps=SALT_PEPPER_EPS,
    present: Tensor | None = None,
) -> Iterator[Condition]:
    """The named conditions of `protocol` on raw test inputs (float tensors, N rows), seeded;
    `present` (N, M) bool is the data's presence of the rows (None: all present)."""
    check_raw_protocol(protocol)
    mods = list(features)
    n = next(iter(features.values())).shape[0]
    given = _all(n, len(mods)) if present is None else present
    if protocol == "clean":
        yield Condition("clean", "clean", features, given, mods)
    elif protocol == "missing":
        for subset in missing_subsets(mods):
            mask = torch.tensor([m in subset for m in mods]).expand(n, -1).clone()
            mask = mask if present is None else keep_present(mask, present)
            if present is None:
                feats = {m: x if m in subset else torch.zeros_like(x) for m, x in features.items()}
            else:
                feats = {m: torch.where(_cell(mask, i, x), x, torch.zeros_like(x))
                         for i, (m, x) in enumerate(features.items())}  # fmt: skip
            yield Condition("missing", subset_name(subset, mods), feats, mask, list(subset))
    elif protocol == "gaussian":
        for eps in gaussian_eps:
            gen = generator(seed, 1, int(eps * 1000))
            mask = corrupt_mask(n, len(mods), gen)
            feats = {}
            for i, (m, x) in enumerate(features.items()):
                if kinds[m] == "tokens":
                    feats[m] = x
                    continue
                std = stats[m].std.float()
                std = std.reshape(x.shape[1:]) if std.numel() > 1 else std
                noise = torch.randn(x.shape, generator=gen) * (eps**0.5) * std
                feats[m] = x + noise * (
                    _cell(mask & given, i, x) if present is not None else _cell(mask, i, x)
                )
            yield Condition("gaussian", f"gaussian:{eps:g}", feats, given, mods)
    else:
        for eps in salt_pepper_eps:
            gen = generator(seed, 2, int(eps * 1000))
            cells = corrupt_mask(n, len(mods), gen)
            feats = {}
            for i, (m, x) in enumerate(features.items()):
                if kinds[m] != "image":
                    feats[m] = x
                    continue
                flat = x.reshape(n, -1)
                hit = salt_pepper_mask(n, flat.shape[1], eps / 10, gen) & (cells & given)[:, i : i + 1]
                salt = torch.rand(flat.shape, generator=gen) < 0.5
                value = torch.where(salt, stats[m].high, stats[m].low).to(x.dtype)
                feats[m] = torch.where(hit, value, flat).reshape(x.shape)
            yield Condition("salt_pepper", f"salt_pepper:{eps:g}", feats, given, mods)


def _register(name: str) -> None:
    @register_protocol(name, raw=True)
    def conditions_of(features, kinds, stats, seed, present=None):
        return raw_conditions(name, features, kinds, stats, seed, present=present)


for _name in RAW_PROTOCOLS:
    _register(_name)

__all__ = ["RAW_PROTOCOLS", "check_raw_protocol", "raw_conditions"]
