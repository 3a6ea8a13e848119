"""Scaled tensor views of a dataset's splits, ready for training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.scaling import Standardizer
from pmrfusion.types import Batch


@dataclass
class TensorSplit:
    features: dict[str, Tensor]
    labels: Tensor
    index: Tensor  # row ids in the original dataset
    # Scaled value of an absent modality under the papers' protocol: the original-unit zero
    # feature, (0 - mean) / std of the training scaler (`Standardizer.zero_point`). None when
    # the split was built without a scaler (then only mean imputation is defined).
    absent_fill: dict[str, Tensor] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def modalities(self) -> list[str]:
        return list(self.features)

    def batch(self, rows: Tensor, present: Tensor | None = None) -> Batch:
        if present is None:
            present = torch.ones(len(rows), len(self.features), dtype=torch.bool)
        return Batch(
            {m: x[rows] for m, x in self.features.items()}, present, self.labels[rows], self.index[rows]
        )


@dataclass
class PreparedData:
    name: str
    train: TensorSplit
    val: TensorSplit | None
    test: TensorSplit
    scaler: Standardizer
    num_classes: int
    dims: dict[str, int]

    @property
    def modalities(self) -> list[str]:
        return list(self.dims)

    @property
    def train_range(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Per-feature (min, max) of the scaled training rows, for salt-and-pepper and conflict."""
        return {m: (x.amin(0), x.amax(0)) for m, x in self.train.features.items()}

    @property
    def absent_fill(self) -> dict[str, Tensor]:
        """Per modality, the scaled features of an original-unit zero (the papers' absent value)."""
        return {m: torch.from_numpy(v) for m, v in self.scaler.zero_point().items()}


def to_split(data: MultimodalData, rows: np.ndarray, scaler: Standardizer) -> TensorSplit:
    feats, labels = data.take(rows)
    feats = scaler.transform(feats)
    return TensorSplit(
        {m: torch.from_numpy(x) for m, x in feats.items()},
        torch.from_numpy(labels),
        torch.from_numpy(np.asarray(rows, dtype=np.int64)),
        {m: torch.from_numpy(v) for m, v in scaler.zero_point().items()},
    )


def prepare(data: MultimodalData, val_fraction: float = 0.15, seed: int = 0) -> PreparedData:
    """Carve a seeded validation split from train, fit scaling on train rows only, make tensors."""
    data = data.with_validation(val_fraction, seed)
    train_rows = data.split("train")
    scaler = Standardizer.fit(data.features, train_rows)
    val = to_split(data, data.splits["val"], scaler) if "val" in data.splits else None
    return PreparedData(
        data.name,
        to_split(data, train_rows, scaler),
        val,
        to_split(data, data.split("test"), scaler),
        scaler,
        data.num_classes,
        data.dims,
    )
