"""Training-row statistics of raw modalities (what the front-ends and the noise protocols scale by).

`fit_stats` decodes (a seeded subset of) the training rows once: image and audio get scalar
mean/std/min/max of their values, audio also the per-(freq, time) mean/std of its log-spectrogram
(`log_spectrogram`), arrays and hashed text per-feature statistics; token ids get none. Only the
rows where a modality is present count (`Batch.present`): absent cells are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pmrfusion.errors import PMRFusionError
from pmrfusion.types import Batch

EPS = 1e-8


@dataclass
class ModalityStats:
    """Training-row statistics of one modality (scalars for image/audio, vectors for arrays)."""

    mean: Tensor
    std: Tensor
    low: float = 0.0  # min / max of the raw values (salt-and-pepper)
    high: float = 0.0
    spec_mean: Tensor | None = None  # audio: log-spectrogram mean / std per (freq, time) cell
    spec_std: Tensor | None = None


@dataclass
class FrontendConfig:
    spectrogram_size: tuple[int, int] = (32, 32)
    n_fft: int = 256
    max_rows: int = 2048  # training rows used for the statistics


def spectrogram_hop(length: int, size: tuple[int, int]) -> int:
    return max(1, length // size[1])


def log_spectrogram(wave: Tensor, n_fft: int, hop: int, window: Tensor, size: tuple[int, int]) -> Tensor:
    """Waveform (B, L) -> log(avg-pooled |STFT| + 1e-8), (B, 1, freq, time)."""
    spec = torch.stft(wave.float(), n_fft, hop, window=window, return_complex=True).abs()
    spec = F.adaptive_avg_pool2d(spec.unsqueeze(1), tuple(size))
    return torch.log(spec + EPS)


def sample_batches(split, max_rows: int, seed: int = 0) -> Iterator[Batch]:
    """Seeded subset of at most `max_rows` rows of a raw split, decoded through its DataLoader."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(split), generator=g)[:max_rows].sort().values.numpy()
    sub = split.subset(split.rows[pick])
    return sub.batches(sub.loader(split.loader_settings.eval_batch_size))


def fit_stats(split, cfg: FrontendConfig | None = None) -> dict[str, ModalityStats]:
    """Per-modality statistics of a raw split's rows (use the training split)."""
    cfg = cfg or FrontendConfig()
    kinds = split.data.kinds
    no_stats = ModalityStats(torch.zeros(()), torch.ones(()))
    stats = {m: no_stats for m in split.modalities if kinds[m] == "tokens"}
    acc: dict[str, list[Tensor]] = {m: [] for m in split.modalities if m not in stats}
    if acc:
        names = list(acc)
        for batch in sample_batches(split.only(names), cfg.max_rows):
            for j, m in enumerate(names):
                x = batch.features[m].float()
                acc[m].append(x[batch.present[:, j]] if not batch.present[:, j].all() else x)
    for m, parts in acc.items():
        x = torch.cat(parts)
        if len(x) == 0:
            raise PMRFusionError(f"modality '{m}' is absent from every training row used for its statistics")
        if kinds[m] in ("image", "audio"):
            s = ModalityStats(x.mean(), x.std(), float(x.min()), float(x.max()))
            if kinds[m] == "audio":
                size = tuple(cfg.spectrogram_size)
                window = torch.hann_window(cfg.n_fft)
                spec = log_spectrogram(x, cfg.n_fft, spectrogram_hop(x.shape[1], size), window, size)
                s.spec_mean, s.spec_std = spec.mean(0), spec.std(0)
            stats[m] = s
        else:
            flat = x.flatten(1)
            stats[m] = ModalityStats(flat.mean(0), flat.std(0), float(flat.min()), float(flat.max()))
    return {m: stats[m] for m in split.modalities}


__all__ = ["EPS", "FrontendConfig", "ModalityStats", "fit_stats", "log_spectrogram", "sample_batches"]
