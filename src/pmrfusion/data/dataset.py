"""`MultimodalData`: validated multimodal feature arrays with named splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pmrfusion.data.splits import carve_validation
from pmrfusion.data.validation import (
    check_disjoint_splits,
    check_features,
    check_labels,
    check_modality_name,
    check_split_indices,
)
from pmrfusion.errors import PMRFusionError
from pmrfusion.tasks import REGRESSION, check_task, detect_task


@dataclass
class MultimodalData:
    """Features of several modalities for the same N samples, with labels and splits.

    features: ordered mapping modality -> (N, d_m) float32 array.
    labels: (N,) int64 in 0..num_classes-1, or float32 for a regression task.
    task: "classification" or "regression"; "" detects it (float labels that are not all integers
    -> regression). A regression dataset has num_classes == 1 (one real output).
    splits: mapping split name ("train", "val", "test") -> row indices.
    """

    name: str
    features: dict[str, np.ndarray]
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    num_classes: int = -1
    notes: list[str] = field(default_factory=list)
    task: str = ""

    def __post_init__(self) -> None:
        if len(self.features) < 2:
            raise PMRFusionError(
                f"dataset '{self.name}': need at least 2 modalities, got {len(self.features)}"
            )
        if not isinstance(self.name, str):
            raise PMRFusionError(f"dataset name must be a string, got {self.name!r}")
        labels = np.asarray(self.labels).reshape(-1)
        self.task = check_task(self.task or detect_task(labels))
        labels, self.num_classes, label_notes = check_labels(self.name, labels, self.num_classes, self.task)
        self.notes = list(self.notes) + [n for n in label_notes if n not in self.notes]
        self.labels = labels
        n = len(self.labels)
        if n == 0:
            raise PMRFusionError(f"dataset '{self.name}' has no samples")
        clean: dict[str, np.ndarray] = {}
        for mod, x in self.features.items():
            check_modality_name(self.name, mod)
            x = check_features(self.name, mod, x)
            if x.ndim == 1:
                x = x[:, None]
            if x.ndim != 2:
                raise PMRFusionError(
                    f"dataset '{self.name}': modality '{mod}' must be 2-D (N, d), got {x.shape}"
                )
            if x.shape[1] == 0:
                raise PMRFusionError(f"dataset '{self.name}': modality '{mod}' has dimension 0")
            if x.shape[0] != n:
                raise PMRFusionError(
                    f"dataset '{self.name}': modality '{mod}' has {x.shape[0]} rows but there are {n} labels"
                )
            x = x.astype(np.float32, copy=False)
            bad = ~np.isfinite(x)
            if bad.any():
                r, c = np.argwhere(bad)[0]
                raise PMRFusionError(
                    f"dataset '{self.name}': modality '{mod}' has {int(bad.sum())} NaN/inf "
                    f"values (first at row {r}, column {c})"
                )
            clean[mod] = x
        self.features = clean
        for split, idx in list(self.splits.items()):
            self.splits[split] = check_split_indices(self.name, split, idx, n)
        check_disjoint_splits(self.name, self.splits)

    @property
    def modalities(self) -> list[str]:
        return list(self.features)

    @property
    def dims(self) -> dict[str, int]:
        return {m: int(x.shape[1]) for m, x in self.features.items()}

    @property
    def num_samples(self) -> int:
        return int(len(self.labels))

    def split(self, name: str) -> np.ndarray:
        if name not in self.splits:
            raise PMRFusionError(f"dataset '{self.name}' has no '{name}' split")
        return self.splits[name]

    def take(self, rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Features and labels of the given rows."""
        return {m: x[rows] for m, x in self.features.items()}, self.labels[rows]

    def with_validation(self, fraction: float = 0.15, seed: int = 0) -> MultimodalData:
        """A copy whose 'train' split is cut into train/val (stratified, seeded).

        An existing 'val' split is kept. The test split is never touched.
        """
        if "val" in self.splits or fraction <= 0:
            return self
        strata = np.zeros(len(self.labels), np.int64) if self.task == REGRESSION else self.labels
        splits = dict(self.splits)
        splits["train"], splits["val"] = carve_validation(self.split("train"), strata, fraction, seed)
        return MultimodalData(
            self.name, self.features, self.labels, splits, self.num_classes, list(self.notes), self.task
        )

    def summary(self) -> str:
        dims = ", ".join(f"{m} {d}" for m, d in self.dims.items())
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        return (
            f"{self.name}: {self.num_samples} samples, "
            + ("regression, " if self.task == REGRESSION else f"{self.num_classes} classes, ")
            + f"{len(self.features)} modalities ({dims}); splits: {sizes}"
        )
