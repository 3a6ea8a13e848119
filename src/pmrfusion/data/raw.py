"""Raw multimodal data (images, audio, arrays, text) decoded lazily, one sample at a time.

`RawMultimodalData` is the raw counterpart of `MultimodalData`: labels (integer classes, or
float targets of a regression task), splits and, per modality, a *kind* ("image", "audio",
"array", "text", "tokens") and the shape of one decoded sample.
Samples come from a `SampleSource` (files listed in a manifest, or in-memory arrays such as
the built-in AV-MNIST) and are served by a `torch.utils.data.DataLoader` through `RawSplit`,
so nothing forces the whole dataset into memory.

Decoded sample tensors: image (C, H, W) uint8; audio (L,) float32 in [-1, 1] cropped or
zero-padded to a fixed length; array: float32 of the file's shape; text: (TEXT_DIM,) float32
hashed bag of words; tokens: (2, L) int64 [input ids; attention mask], zero-padded to L (a text
modality tokenised at decode time for a pretrained text encoder, see `with_tokens`).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from pmrfusion.data.batching import BatchStream, loader_batches, loader_stream
from pmrfusion.data.labelled import LabelledRows
from pmrfusion.data.presence import Presence, check_presence, presence_matrix
from pmrfusion.data.validation import (
    check_modality_name,
)
from pmrfusion.errors import PMRFusionError
from pmrfusion.tasks import REGRESSION
from pmrfusion.types import Batch

KINDS = ("image", "audio", "array", "text", "tokens")
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
    """Decodes row `i` of a dataset into one tensor per modality.

    Sources with text modalities also give the raw string (`text(row, modality)`), which
    `TokenSource` tokenises.
    """

    def get(self, row: int, modalities: list[str]) -> dict[str, Tensor]: ...


@dataclass
class ArraySource:
    """Samples stored in arrays: modality m of row i is `arrays[m][index[m][i]]`.

    int16 audio is scaled to [-1, 1] float32 on access. Text modalities are lists of strings in
    `texts` (row i is `texts[m][index[m][i]]`, or `texts[m][i]` without an index), decoded as
    hashed bags of words.
    """

    arrays: dict[str, np.ndarray]
    index: dict[str, np.ndarray]
    texts: dict[str, Sequence[str]] = field(default_factory=dict)

    def _at(self, m: str, row: int) -> int:
        return int(self.index[m][row]) if m in self.index else row

    def text(self, row: int, modality: str) -> str:
        if modality not in self.texts:
            raise PMRFusionError(f"modality '{modality}' is not a text modality")
        return str(self.texts[modality][self._at(modality, row)])

    def get(self, row: int, modalities: list[str]) -> dict[str, Tensor]:
        out = {}
        for m in modalities:
            if m in self.texts:
                out[m] = torch.from_numpy(text_features(self.text(row, m)))
                continue
            x = self.arrays[m][self._at(m, row)]
            if x.dtype == np.int16:
                x = x.astype(np.float32) / 32768.0
            out[m] = torch.from_numpy(np.ascontiguousarray(x))
        return out


@dataclass
class TokenSource:
    """A source whose text modalities in `tokenizers` decode to token tensors (kind "tokens").

    `tokenizers[m]` maps the raw string (`base.text(row, m)`) to a (2, L) int64 array; other
    modalities are decoded by `base` as before.
    """

    base: SampleSource
    tokenizers: dict[str, Callable[[str], np.ndarray]]

    def text(self, row: int, modality: str) -> str:
        return self.base.text(row, modality)  # type: ignore[attr-defined]

    def get(self, row: int, modalities: list[str]) -> dict[str, Tensor]:
        rest = [m for m in modalities if m not in self.tokenizers]
        out = self.base.get(row, rest) if rest else {}
        for m in modalities:
            if m in self.tokenizers:
                out[m] = torch.from_numpy(np.asarray(self.tokenizers[m](self.text(row, m)), dtype=np.int64))
        return {m: out[m] for m in modalities}


@dataclass
class RawMultimodalData(LabelledRows):
    """Raw samples of several modalities with labels and named splits (row indices).

    task: "classification" (int64 labels 0..C-1) or "regression" (float32 targets, num_classes
    1); "" detects it from the labels as `MultimodalData` does. encoder_defaults: modality ->
    registered encoder used when none is asked for (else the kind's default), e.g. MOSI's raw
    transcripts default to `minilm`.
    classes / present / unlabelled (`labels` None) as for `MultimodalData`: `present[m][i]` False
    marks modality m of row i absent (its source decodes zeros of the modality's shape; the batch's
    `present` mask says so; statistics skip it). `num_rows` gives the sample count of an unlabelled
    dataset (default: 1 + the largest split row).
    """

    name: str
    kinds: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    source: SampleSource
    num_classes: int = -1
    sample_rates: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    task: str = ""
    encoder_defaults: dict[str, str] = field(default_factory=dict)
    classes: list[str] | None = None
    present: Presence | None = None
    num_rows: int = 0

    def __post_init__(self) -> None:
        if len(self.kinds) < 2:
            raise PMRFusionError(f"dataset '{self.name}': need at least 2 modalities, got {len(self.kinds)}")
        bad = {m: k for m, k in self.kinds.items() if k not in KINDS}
        if bad:
            raise PMRFusionError(f"dataset '{self.name}': unknown modality kinds {bad}; use {KINDS}")
        for m in self.kinds:
            check_modality_name(self.name, m)
        rows = self.num_rows or (
            1 + max((int(np.max(v)) for v in self.splits.values() if len(v)), default=-1)
        )
        n = self._check_labels(rows)
        self.present = check_presence(self.name, self.present, list(self.kinds), n)
        self._check_splits(n)

    @property
    def modalities(self) -> list[str]:
        return list(self.kinds)

    @property
    def dims(self) -> dict[str, int]:
        """Flattened size of one decoded sample per modality (for listings)."""
        return {m: int(np.prod(s)) for m, s in self.shapes.items()}

    def with_tokens(self, tokenizers: dict[str, Callable[[str], np.ndarray]]) -> RawMultimodalData:
        """A copy whose text modalities in `tokenizers` decode to (2, L) int64 tokens (kind "tokens").

        Each tokenizer maps a string to a fixed-size (2, L) array and has a `shape` attribute.
        """
        bad = {m: self.kinds.get(m) for m in tokenizers if self.kinds.get(m) != "text"}
        if bad:
            raise PMRFusionError(f"dataset '{self.name}': only text modalities can be tokenised, got {bad}")
        kinds = {m: "tokens" if m in tokenizers else k for m, k in self.kinds.items()}
        shapes = {m: tuple(tokenizers[m].shape) if m in tokenizers else s for m, s in self.shapes.items()}
        source = TokenSource(self.source, dict(tokenizers))
        return dataclasses.replace(self, kinds=kinds, shapes=shapes, source=source, notes=list(self.notes))

    def presence_of(self, rows: np.ndarray) -> np.ndarray | None:
        """(len(rows), M) bool presence of `rows`; None when every cell of the dataset is present."""
        return None if self.present is None else presence_matrix(self.present, self.modalities, rows)

    def rows(self, split: str, modalities: list[str] | None = None) -> RawSplit:
        return RawSplit(self, self.split(split), modalities)

    def summary(self) -> str:
        mods = ", ".join(
            f"{m} {self.kinds[m]} {tuple(self.shapes[m])}"
            + (f" -> {self.encoder_defaults[m]}" if m in self.encoder_defaults else "")
            for m in self.kinds
        )
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        task = ("unlabelled" if self.labels is None else "regression" if self.task == REGRESSION
                else f"{self.num_classes} classes")  # fmt: skip
        return (
            f"{self.name}: {self.num_samples} samples, {task}, "
            f"{len(self.kinds)} raw modalities ({mods}); splits: {sizes}" + self.presence_summary()
        )


class RawDataset(Dataset):
    """`torch.utils.data.Dataset` over some rows of a `RawMultimodalData`: decodes on access."""

    def __init__(self, data: RawMultimodalData, rows: np.ndarray, modalities: list[str], labels: np.ndarray):
        self.source, self.rows, self.modalities, self.labels = data.source, rows, modalities, labels

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[dict[str, Tensor], np.generic, int]:
        row = int(self.rows[i])
        # a numpy scalar collates to a tensor of its dtype: int64 classes, float32 targets
        return self.source.get(row, self.modalities), self.labels[i], row


@dataclass
class LoaderSettings:
    """DataLoader settings for raw splits (defaults: 2 workers, prefetch 4 batches; batches in
    pinned memory when CUDA is present, so that the trainer's non-blocking copies overlap)."""

    num_workers: int = 2
    prefetch_factor: int = 4
    eval_batch_size: int = 512
    pin_memory: bool | None = None  # None: when torch.cuda.is_available()


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
        lab = self.label_override if self.label_override is not None else self.data.row_labels(self.rows)
        dtype = np.float32 if self.data.task == REGRESSION else np.int64
        return torch.from_numpy(np.asarray(lab, dtype=dtype))

    @property
    def index(self) -> Tensor:
        return torch.from_numpy(self.rows.astype(np.int64))

    @property
    def present(self) -> Tensor | None:
        """(len, M) bool presence of the rows (modalities in this split's order); None: all present."""
        mask = self.data.presence_of(self.rows)
        if mask is None:
            return None
        order = [self.data.modalities.index(m) for m in self.modalities]
        return torch.from_numpy(np.ascontiguousarray(mask[:, order]))

    def presence_rows(self, rows: Tensor) -> Tensor:
        """(len(rows), M) bool presence of dataset row ids `rows` (all True when nothing is absent)."""
        if self.data.present is None:
            return torch.ones(len(rows), len(self.modalities), dtype=torch.bool)
        return torch.from_numpy(presence_matrix(self.data.present, self.modalities, rows.numpy()))

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
            pin_memory=torch.cuda.is_available() if s.pin_memory is None else s.pin_memory,
        )

    def batches(self, loader: DataLoader) -> Iterator[Batch]:
        return loader_batches(self, loader)

    @property
    def eval_batch_size(self) -> int:
        return self.loader_settings.eval_batch_size

    def subset(self, rows: np.ndarray) -> RawSplit:
        """Some of the rows (their own labels), same modalities and loader settings."""
        return RawSplit(self.data, rows, self.modalities, self.loader_settings)

    def training_stream(
        self, batch_size: int, seed: int, dropout: float = 0.0, absent_fill: str = "zero_feature", ctx=None
    ) -> BatchStream:
        """Seeded training epochs through one DataLoader (see `data.batching`); raw inputs of a
        dropped modality are left as they are (`absent_fill` does not apply)."""
        return loader_stream(self, batch_size, seed, dropout, ctx)

    def eval_batches(self) -> Iterator[Batch]:
        """Every row in order; the DataLoader (and its persistent workers) is kept for the next call."""
        loader = getattr(self, "_eval_loader", None)
        if loader is None:
            loader = self.loader(self.loader_settings.eval_batch_size)
            self._eval_loader = loader
        return self.batches(loader)

    def materialize(self) -> dict[str, Tensor]:
        """Every row decoded and stacked (for test-time protocols on a test split); absent cells
        decode to zeros (see `present`)."""
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
    "TokenSource",
    "fit_length",
    "text_features",
]
