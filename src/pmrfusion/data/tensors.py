"""`TensorSplit`: the rows of a feature-vector dataset as scaled in-memory tensors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pmrfusion.data.absent import absent_values
from pmrfusion.data.batching import BatchStream, in_memory_stream
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.scaling import Standardizer
from pmrfusion.types import Batch

EVAL_BATCH_SIZE = 4096


@dataclass
class TensorSplit:
    features: dict[str, Tensor]
    labels: Tensor
    index: Tensor  # row ids in the original dataset
    # Scaled value of an absent modality under the papers' protocol: the original-unit zero
    # feature, (0 - mean) / std of the training scaler (`Standardizer.zero_point`). None when
    # the split was built without a scaler (then only mean imputation is defined).
    absent_fill: dict[str, Tensor] | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE
    # (N, M) bool: which modalities each row has (`data.presence`); None when all are present.
    # Absent cells hold `absent_fill` (the scaled original-unit zero the dataset stores).
    present: Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def modalities(self) -> list[str]:
        return list(self.features)

    def presence(self) -> Tensor:
        """(N, M) bool presence of every row (all True when nothing is absent)."""
        if self.present is None:
            return torch.ones(len(self), len(self.features), dtype=torch.bool)
        return self.present

    def batch(self, rows: Tensor, present: Tensor | None = None) -> Batch:
        """Rows `rows`; their `present` is the data's presence AND `present` (a dropout mask)."""
        if self.present is not None:
            present = self.present[rows] if present is None else present & self.present[rows]
        if present is None:
            present = torch.ones(len(rows), len(self.features), dtype=torch.bool)
        return Batch(
            {m: x[rows] for m, x in self.features.items()}, present, self.labels[rows], self.index[rows]
        )

    def with_labels(self, labels: Tensor) -> TensorSplit:
        """The same rows with other labels (label-noise training)."""
        return TensorSplit(
            self.features, labels, self.index, self.absent_fill, self.eval_batch_size, self.present
        )

    def materialize(self) -> dict[str, Tensor]:
        """Every row's features (already in memory)."""
        return self.features

    def training_stream(
        self, batch_size: int, seed: int, dropout: float = 0.0, absent_fill: str = "zero_feature", ctx=None
    ) -> BatchStream:
        """Seeded training epochs (see `data.batching`); dropped and absent modalities fed as
        `absent_fill`."""
        fill = None
        if dropout > 0 or (self.present is not None and absent_fill != "zero_feature"):
            fill = absent_values(absent_fill, self.features, self.absent_fill)
        return in_memory_stream(self, batch_size, seed, dropout, fill, ctx)

    def eval_batches(self) -> Iterator[Batch]:
        """Every row in order, in chunks of `eval_batch_size`."""
        n = len(self)
        for s in range(0, n, self.eval_batch_size):
            yield self.batch(torch.arange(s, min(s + self.eval_batch_size, n)))


def to_split(data: MultimodalData, rows: np.ndarray, scaler: Standardizer) -> TensorSplit:
    """The rows of `data` scaled by `scaler`, with their presence (absent cells: the scaled zero)."""
    feats, labels = data.take(rows)
    feats = scaler.transform(feats)
    present = data.presence_of(np.asarray(rows, dtype=np.int64))
    return TensorSplit(
        {m: torch.from_numpy(x) for m, x in feats.items()},
        torch.from_numpy(labels),
        torch.from_numpy(np.asarray(rows, dtype=np.int64)),
        {m: torch.from_numpy(v) for m, v in scaler.zero_point().items()},
        present=None if present is None else torch.from_numpy(present),
    )


__all__ = ["EVAL_BATCH_SIZE", "TensorSplit", "to_split"]
