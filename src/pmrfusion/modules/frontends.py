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

import torch
from torch import Tensor, nn

from pmrfusion.data.statistics import (
    EPS,
    FrontendConfig,
    ModalityStats,
    fit_stats,
    log_spectrogram,
    sample_batches,
    spectrogram_hop,
)


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
        self.hop = spectrogram_hop(length, size)
        self.size = tuple(size)
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, wave: Tensor) -> Tensor:
        return log_spectrogram(wave, self.n_fft, self.hop, self.window, self.size)


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
    "sample_batches",
]
