"""What both data kinds share: labels (classes or regression targets), the task and named splits."""

from __future__ import annotations

import dataclasses

import numpy as np

from pmrfusion.data.splits import carve_validation
from pmrfusion.data.validation import check_disjoint_splits, check_labels, check_split_indices
from pmrfusion.errors import PMRFusionError
from pmrfusion.tasks import REGRESSION, check_task, detect_task


class LabelledRows:
    """Mixin of `MultimodalData` and `RawMultimodalData` (dataclasses with name, labels, splits,
    num_classes, notes and task fields)."""

    name: str
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    num_classes: int
    notes: list[str]
    task: str

    def _check_labels(self) -> int:
        """Detect or check the task, check and encode the labels; returns the number of samples."""
        labels = np.asarray(self.labels).reshape(-1)
        self.task = check_task(self.task or detect_task(labels))
        checked = check_labels(self.name, labels, self.num_classes, self.task)
        self.labels, self.num_classes, label_notes = checked
        self.notes = list(self.notes) + [n for n in label_notes if n not in self.notes]
        if len(self.labels) == 0:
            raise PMRFusionError(f"dataset '{self.name}' has no samples")
        return len(self.labels)

    def _check_splits(self) -> None:
        n = len(self.labels)
        self.splits = {k: check_split_indices(self.name, k, v, n) for k, v in self.splits.items()}
        check_disjoint_splits(self.name, self.splits)

    @property
    def num_samples(self) -> int:
        return int(len(self.labels))

    def split(self, name: str) -> np.ndarray:
        if name not in self.splits:
            raise PMRFusionError(f"dataset '{self.name}' has no '{name}' split")
        return self.splits[name]

    def with_validation(self, fraction: float = 0.15, seed: int = 0):
        """A copy whose 'train' split is cut into train/val (stratified by class, seeded; random
        for regression). An existing 'val' split is kept; the test split is never touched."""
        if "val" in self.splits or fraction <= 0:
            return self
        strata = np.zeros(len(self.labels), np.int64) if self.task == REGRESSION else self.labels
        train, val = carve_validation(self.split("train"), strata, fraction, seed)
        splits = {**self.splits, "train": train, "val": val}
        return dataclasses.replace(self, splits=splits, notes=list(self.notes))


__all__ = ["LabelledRows"]
