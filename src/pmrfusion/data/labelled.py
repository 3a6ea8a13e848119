"""What both data kinds share: labels (classes or regression targets), the task, named splits and the
presence matrix (`data.presence`).

Class labels may be strings or any integers: they are encoded with a stored class list
(`classes`, see `data.labels`; None when the labels already were 0..K-1). A dataset may also have
no labels (`labels` None): it loads (every row in one "test" split, for prediction), but training
and benchmarks refuse it (`require_labels`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from pmrfusion.data.labels import encode_labels, encode_with, is_text_labels
from pmrfusion.data.presence import Presence, patterns_text
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
    classes: list[str] | None
    present: Presence | None

    def _check_labels(self, num_rows: int | None = None) -> int:
        """Detect or check the task, check and encode the labels; returns the number of samples.

        `num_rows`: the number of samples when there are no labels (`labels` None)."""
        if self.labels is None:
            if not num_rows:
                raise PMRFusionError(f"dataset '{self.name}' has no samples")
            self.task = check_task(self.task) if self.task else ""
            if self.classes is not None:
                self.classes = [str(c) for c in self.classes]
                self.num_classes = len(self.classes)
            self._num_rows = int(num_rows)
            return int(num_rows)
        labels = np.asarray(self.labels).reshape(-1)
        if self.task != REGRESSION:
            if self.classes is not None:
                self.classes = [str(c) for c in self.classes]
                labels = encode_with(self.name, labels, self.classes)
                self.task, self.num_classes = check_task(self.task or "classification"), len(self.classes)
            elif is_text_labels(labels) or (
                self.num_classes < 0 and labels.dtype.kind in "iu" and labels.size and labels.min() < 0
            ):
                labels, self.classes = encode_labels(self.name, labels)
                self.task = check_task(self.task or "classification")
        self.task = check_task(self.task or detect_task(labels))
        checked = check_labels(self.name, labels, self.num_classes, self.task)
        if self.task != REGRESSION and self.classes is None and self.num_classes < 0:
            _, self.classes = encode_labels(self.name, labels)  # integers that were not 0..K-1
        self.labels, self.num_classes, label_notes = checked
        self.notes = list(self.notes) + [n for n in label_notes if n not in self.notes]
        if len(self.labels) == 0:
            raise PMRFusionError(f"dataset '{self.name}' has no samples")
        return len(self.labels)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def presence_summary(self) -> str:
        """ "; presence patterns: a+b 90, a 10" when some modality is absent somewhere, else ""."""
        text = patterns_text(self.present)
        return f"; {text}" if text else ""

    def _check_splits(self, n: int) -> None:
        self.splits = {k: check_split_indices(self.name, k, v, n) for k, v in self.splits.items()}
        check_disjoint_splits(self.name, self.splits)

    @property
    def num_samples(self) -> int:
        if self.labels is None:
            return self._num_rows
        return int(len(self.labels))

    _num_rows: int = 0

    def row_labels(self, rows: np.ndarray) -> np.ndarray:
        """Labels of `rows` (-1 for every row of an unlabelled dataset)."""
        if self.labels is None:
            return np.full(len(rows), -1, dtype=np.int64)
        return self.labels[rows]

    def split(self, name: str) -> np.ndarray:
        if name not in self.splits:
            raise PMRFusionError(f"dataset '{self.name}' has no '{name}' split")
        return self.splits[name]

    def with_validation(self, fraction: float = 0.15, seed: int = 0):
        """A copy whose 'train' split is cut into train/val (stratified by class, seeded; random
        for regression). An existing 'val' split is kept; the test split is never touched."""
        if "val" in self.splits or fraction <= 0:
            return self
        require_labels(self, "training")
        strata = np.zeros(len(self.labels), np.int64) if self.task == REGRESSION else self.labels
        train, val = carve_validation(self.split("train"), strata, fraction, seed)
        splits = {**self.splits, "train": train, "val": val}
        return dataclasses.replace(self, splits=splits, notes=list(self.notes))


def require_labels(data: LabelledRows, command: str) -> None:
    """One error line when `data` has no labels (it can only be predicted on)."""
    if data.labels is None:
        raise PMRFusionError(
            f"dataset '{data.name}' has no labels (no 'label' / 'target'): {command} needs labelled data; "
            "an unlabelled dataset can only be predicted on"
        )


__all__ = ["LabelledRows", "require_labels"]
