"""Raw multimodal data (images, audio, arrays, text) decoded lazily, one sample at a time.

`RawMultimodalData` is the raw counterpart of `MultimodalData`: labels, splits and, per
modality, a *kind* ("image", "audio", "array", "text") and the shape of one decoded sample.
Samples come from a `SampleSource` (files listed in a manifest, or in-memory arrays such as
the built-in AV-MNIST) and are served by a `torch.utils.data.DataLoader` through `RawSplit`,
so nothing forces the whole dataset into memory.

Decoded sample tensors: image (C, H, W) uint8; audio (L,) float32 in [-1, 1] cropped or
zero-padded to a fixed length; array: float32 of the file's shape; text: (TEXT_DIM,) float32
hashed bag of words.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from pmrfusion.data.splits import carve_validation
from pmrfusion.data.validation import (
    check_disjoint_splits,
    check_labels,
    check_modality_name,
    check_split_indices,
)
from pmrfusion.errors import PMRFusionError
from pmrfusion.types import Batch

KINDS = ("image", "audio", "array", "text")
TEXT_DIM = 256


def text_features(text: str, dim: int = TEXT_DIM) -> np.ndarray:
    """Hashed bag of words (crc32 of each lower-cased token mod `dim`), counts, float32."""
    out = np.zeros(dim, dtype=np.float32)
    for tok in text.lower().split():
        out[zlib.crc32(tok.encode()) % dim] += 1.0
    return out


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Crop (keep the start) or zero-pad a 1-D waveform to exactly `length` samples."""
    if len(wave) >= length:
        return wave[:length]
    return np.pad(wave, (0, length - len(wave)))


class SampleSource(Protocol):
    """Decodes row `i` of a dataset into one tensor per modality."""

    def get(self, row: int, modalities: list[str]) -> dict[str, Tensor]: ...


@dataclass
class ArraySource:
    """Samples stored in arrays: modality m of row i is `arrays[m][index[m][i]]`.

    int16 audio is scaled to [-1, 1] float32 on access.
    """

    arrays: dict[str, np.ndarray]
    index: dict[str, np.ndarray]

    def get(self, row: int, modalities: list[str]) -> dict[str, Tensor]:
        out = {}
        for m in modalities:
            x = self.arrays[m][self.index[m][row]]
            if x.dtype == np.int16:
                x = x.astype(np.float32) / 32768.0
            out[m] = torch.from_numpy(np.ascontiguousarray(x))
        return out


@dataclass
class RawMultimodalData:
    """Raw samples of several modalities with labels and named splits (row indices)."""

    name: str
    kinds: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    source: SampleSource
    num_classes: int = -1
    sample_rates: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.kinds) < 2:
            raise PMRFusionError(f"dataset '{self.name}': need at least 2 modalities, got {len(self.kinds)}")
        bad = {m: k for m, k in self.kinds.items() if k not in KINDS}
        if bad:
            raise PMRFusionError(f"dataset '{self.name}': unknown modality kinds {bad}; use {KINDS}")
        for m in self.kinds:
            check_modality_name(self.name, m)
        self.labels, self.num_classes, label_notes = check_labels(self.name, self.labels, self.num_classes)
        self.notes = list(self.notes) + [n for n in label_notes if n not in self.notes]
        n = len(self.labels)
        if n == 0:
            raise PMRFusionError(f"dataset '{self.name}' has no samples")
        self.splits = {k: check_split_indices(self.name, k, v, n) for k, v in self.splits.items()}
        check_disjoint_splits(self.name, self.splits)

    @property
    def modalities(self) -> list[str]:
        return list(self.kinds)

    @property
    def dims(self) -> dict[str, int]:
        """Flattened size of one decoded sample per modality (for listings)."""
        return {m: int(np.prod(s)) for m, s in self.shapes.items()}

    @property
    def num_samples(self) -> int:
        return int(len(self.labels))

    def split(self, name: str) -> np.ndarray:
        if name not in self.splits:
            raise PMRFusionError(f"dataset '{self.name}' has no '{name}' split")
        return self.splits[name]

    def with_validation(self, fraction: float = 0.15, seed: int = 0) -> RawMultimodalData:
        """A copy whose 'train' split is cut into train/val (stratified, seeded); 'val' kept if given."""
        if "val" in self.splits or fraction <= 0:
            return self
        train, val = carve_validation(self.split("train"), self.labels, fraction, seed)
        splits = {**self.splits, "train": train, "val": val}
        return RawMultimodalData(
            self.name, self.kinds, self.shapes, self.labels, splits, self.source,
            self.num_classes, self.sample_rates, list(self.notes),
        )  # fmt: skip

    def rows(self, split: str, modalities: list[str] | None = None) -> RawSplit:
        return RawSplit(self, self.split(split), modalities)

    def summary(self) -> str:
        mods = ", ".join(f"{m} {self.kinds[m]} {tuple(self.shapes[m])}" for m in self.kinds)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        return (
            f"{self.name}: {self.num_samples} samples, {self.num_classes} classes, "
            f"{len(self.kinds)} raw modalities ({mods}); splits: {sizes}"
        )


class RawDataset(Dataset):
    """`torch.utils.data.Dataset` over some rows of a `RawMultimodalData`: decodes on access."""

    def __init__(self, data: RawMultimodalData, rows: np.ndarray, modalities: list[str], labels: np.ndarray):
        self.source, self.rows, self.modalities, self.labels = data.source, rows, modalities, labels

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[dict[str, Tensor], int, int]:
        row = int(self.rows[i])
        return self.source.get(row, self.modalities), int(self.labels[i]), row


@dataclass
class LoaderSettings:
    """DataLoader settings for raw splits (defaults: 2 workers, prefetch 4 batches)."""

    num_workers: int = 2
    prefetch_factor: int = 4
    eval_batch_size: int = 512


@dataclass
class RawSplit:
    """Rows of a raw dataset, streamed as `Batch`es; the trainer accepts it like a `TensorSplit`."""

    data: RawMultimodalData
    rows: np.ndarray
    modalities: list[str] | None = None
    loader_settings: LoaderSettings = field(default_factory=LoaderSettings)
    label_override: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.modalities = list(self.modalities or self.data.modalities)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> Tensor:
        lab = self.label_override if self.label_override is not None else self.data.labels[self.rows]
        return torch.from_numpy(np.asarray(lab, dtype=np.int64))

    @property
    def index(self) -> Tensor:
        return torch.from_numpy(self.rows.astype(np.int64))

    def with_labels(self, labels: Tensor) -> RawSplit:
        return RawSplit(self.data, self.rows, self.modalities, self.loader_settings, labels.numpy())

    def only(self, modalities: list[str]) -> RawSplit:
        return RawSplit(self.data, self.rows, modalities, self.loader_settings, self.label_override)

    def dataset(self) -> RawDataset:
        return RawDataset(self.data, self.rows, self.modalities, self.labels.numpy())

    def loader(self, batch_size: int, sampler=None, shuffle_seed: int | None = None) -> DataLoader:
        """A DataLoader of (features, labels, rows); shuffled by `sampler` or a seeded generator."""
        s = self.loader_settings
        workers = s.num_workers
        gen = torch.Generator().manual_seed(shuffle_seed) if shuffle_seed is not None else None
        return DataLoader(
            self.dataset(),
            batch_size=batch_size,
            shuffle=sampler is None and shuffle_seed is not None,
            sampler=sampler,
            generator=gen,
            num_workers=workers,
            prefetch_factor=s.prefetch_factor if workers > 0 else None,
            persistent_workers=workers > 0,
        )

    def batches(self, loader: DataLoader) -> Iterator[Batch]:
        for feats, labels, rows in loader:
            present = torch.ones(len(labels), len(self.modalities), dtype=torch.bool)
            yield Batch(feats, present, labels, rows)

    def materialize(self) -> dict[str, Tensor]:
        """Every row decoded and stacked (for test-time protocols on a test split)."""
        parts: dict[str, list[Tensor]] = {m: [] for m in self.modalities}
        loader = self.loader(self.loader_settings.eval_batch_size)
        for feats, _, _ in loader:
            for m in self.modalities:
                parts[m].append(feats[m])
        return {m: torch.cat(v) for m, v in parts.items()}


__all__ = [
    "ArraySource",
    "KINDS",
    "LoaderSettings",
    "RawDataset",
    "RawMultimodalData",
    "RawSplit",
    "SampleSource",
    "fit_length",
    "text_features",
]
