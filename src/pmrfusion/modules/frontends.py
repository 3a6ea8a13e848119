"""Modality front-ends: raw decoded tensors -> normalised network inputs (no torchvision/torchaudio).

- image: uint8 (B, C, H, W) -> float, standardised with the training rows' pixel mean/std;
- audio: waveform (B, L) -> log-magnitude STFT, log(|STFT| + 1e-8) as in PMR appendix A.1,
  with |STFT| average-pooled to a configurable (freq, time) size (default 32 x 32), then
  standardised per (freq, time) cell with the training rows' log-spectrogram mean/std
  (zero padding of short recordings gives log(1e-8) cells) -> (B, 1, F, T);
- array / text: flattened, standardised per feature;
- tokens: (B, 2, L) int64 [ids; mask], passed through untouched (the text model embeds them).
Statistics come from `fit_stats` over (a seeded subset of) the training rows only (none for tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.data.raw import RawSplit

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


class ImageFrontend(nn.Module):
    def __init__(self, stats: ModalityStats, shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("mean", stats.mean.float().reshape(()))
        self.register_buffer("std", stats.std.float().reshape(()).clamp_min(EPS))
        self.out_shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std


class LogSpectrogram(nn.Module):
    """Waveform -> log(avg-pooled |STFT| + 1e-8), Hann window, (B, 1, freq, time)."""

    def __init__(self, length: int, n_fft: int = 256, size: tuple[int, int] = (32, 32)):
        super().__init__()
        self.n_fft = n_fft
        self.hop = max(1, length // size[1])
        self.size = tuple(size)
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, wave: Tensor) -> Tensor:
        spec = torch.stft(wave.float(), self.n_fft, self.hop, window=self.window, return_complex=True).abs()
        spec = F.adaptive_avg_pool2d(spec.unsqueeze(1), self.size)
        return torch.log(spec + EPS)


class AudioFrontend(nn.Module):
    def __init__(self, length: int, spec_mean: Tensor, spec_std: Tensor, n_fft=256, size=(32, 32)):
        super().__init__()
        self.spectrogram = LogSpectrogram(length, n_fft, size)
        self.register_buffer("mean", spec_mean.float().reshape(1, 1, *size))
        self.register_buffer("std", spec_std.float().reshape(1, 1, *size).clamp_min(1e-3))
        self.out_shape = (1, *size)

    def forward(self, wave: Tensor) -> Tensor:
        return (self.spectrogram(wave) - self.mean) / self.std


class TokenFrontend(nn.Module):
    """Token ids and attention mask go to the encoder as they are (no statistics)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.out_shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.long()


class VectorFrontend(nn.Module):
    def __init__(self, stats: ModalityStats):
        super().__init__()
        self.register_buffer("mean", stats.mean.float().reshape(-1))
        self.register_buffer("std", stats.std.float().reshape(-1).clamp_min(1e-6))
        self.out_shape = (int(self.mean.numel()),)

    def forward(self, x: Tensor) -> Tensor:
        return (x.float().flatten(1) - self.mean) / self.std


@dataclass
class FrontendConfig:
    spectrogram_size: tuple[int, int] = (32, 32)
    n_fft: int = 256
    max_rows: int = 2048  # training rows used for the statistics


def sample_batches(split: RawSplit, max_rows: int, seed: int = 0):
    """Seeded subset of at most `max_rows` rows of `split`, decoded through its DataLoader."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(split), generator=g)[:max_rows].sort().values.numpy()
    sub = RawSplit(split.data, split.rows[pick], split.modalities, split.loader_settings)
    return sub.batches(sub.loader(split.loader_settings.eval_batch_size))


def fit_stats(split: RawSplit, cfg: FrontendConfig | None = None) -> dict[str, ModalityStats]:
    """Per-modality statistics of the training rows (audio: waveform and log-spectrogram)."""
    cfg = cfg or FrontendConfig()
    kinds = split.data.kinds
    no_stats = ModalityStats(torch.zeros(()), torch.ones(()))
    stats = {m: no_stats for m in split.modalities if kinds[m] == "tokens"}
    acc: dict[str, list[Tensor]] = {m: [] for m in split.modalities if m not in stats}
    if acc:
        for batch in sample_batches(split.only(list(acc)), cfg.max_rows):
            for m, x in batch.features.items():
                acc[m].append(x.float())
    for m, parts in acc.items():
        x = torch.cat(parts)
        if kinds[m] in ("image", "audio"):
            s = ModalityStats(x.mean(), x.std(), float(x.min()), float(x.max()))
            if kinds[m] == "audio":
                spec = LogSpectrogram(x.shape[1], cfg.n_fft, cfg.spectrogram_size)(x)
                s.spec_mean, s.spec_std = spec.mean(0), spec.std(0)
            stats[m] = s
        else:
            flat = x.flatten(1)
            stats[m] = ModalityStats(flat.mean(0), flat.std(0), float(flat.min()), float(flat.max()))
    return {m: stats[m] for m in split.modalities}


def build_frontend(
    kind: str, shape: tuple[int, ...], stats: ModalityStats, cfg: FrontendConfig | None = None
) -> nn.Module:
    """The front-end of a modality of `kind` whose decoded samples have `shape`."""
    cfg = cfg or FrontendConfig()
    if kind == "image":
        return ImageFrontend(stats, shape)
    if kind == "audio":
        return AudioFrontend(shape[0], stats.spec_mean, stats.spec_std, cfg.n_fft, cfg.spectrogram_size)
    if kind == "tokens":
        return TokenFrontend(shape)
    return VectorFrontend(stats)


__all__ = [
    "AudioFrontend",
    "FrontendConfig",
    "ImageFrontend",
    "LogSpectrogram",
    "ModalityStats",
    "TokenFrontend",
    "VectorFrontend",
    "build_frontend",
    "fit_stats",
]
