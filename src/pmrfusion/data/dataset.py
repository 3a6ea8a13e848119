"""`MultimodalData`: validated multimodal feature arrays with named splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pmrfusion.data.labelled import LabelledRows
from pmrfusion.data.presence import Presence, absent_rows_to_zeros, check_presence, presence_matrix
from pmrfusion.data.validation import (
    check_features,
    check_modality_name,
)
from pmrfusion.errors import PMRFusionError
from pmrfusion.tasks import REGRESSION


@dataclass
class MultimodalData(LabelledRows):
    """Features of several modalities for the same N samples, with labels and splits.

    features: ordered mapping modality -> (N, d_m) float32 array.
    labels: (N,) int64 in 0..num_classes-1, or float32 for a regression task; strings or other
    integers are encoded with `classes` (`data.labels`); None: an unlabelled dataset (loads, every
    row in a "test" split, but cannot be trained on).
    task: "classification" or "regression"; "" detects it (float labels that are not all integers
    -> regression). A regression dataset has num_classes == 1 (one real output).
    splits: mapping split name ("train", "val", "test") -> row indices.
    present: modality -> (N,) bool, None when every modality of every sample is present
    (`data.presence`). An all-NaN row of a modality also marks it absent; a partly-NaN row is an
    error naming the row. Absent rows are stored as zeros.
    """

    name: str
    features: dict[str, np.ndarray]
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    num_classes: int = -1
    notes: list[str] = field(default_factory=list)
    task: str = ""
    classes: list[str] | None = None
    present: Presence | None = None

    def __post_init__(self) -> None:
        if len(self.features) < 2:
            raise PMRFusionError(
                f"dataset '{self.name}': need at least 2 modalities, got {len(self.features)}"
            )
        if not isinstance(self.name, str):
            raise PMRFusionError(f"dataset name must be a string, got {self.name!r}")
        first = np.asarray(next(iter(self.features.values())))
        if self.labels is None and not self.splits:
            self.splits = {"test": np.arange(len(first))}
        n = self._check_labels(len(first))
        given = check_presence(self.name, self.present, list(self.features), n) if self.present else None
        presence: dict[str, np.ndarray] = {}
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
            if bad.any() or given is not None:
                x, presence[mod] = absent_rows_to_zeros(
                    self.name, mod, x, None if given is None else given[mod]
                )
            clean[mod] = x
        self.features = clean
        self.present = check_presence(self.name, presence or None, list(clean), n)
        self._check_splits(n)

    @property
    def modalities(self) -> list[str]:
        return list(self.features)

    @property
    def dims(self) -> dict[str, int]:
        return {m: int(x.shape[1]) for m, x in self.features.items()}

    def take(self, rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Features and labels of the given rows (labels -1 when the dataset has none)."""
        return {m: x[rows] for m, x in self.features.items()}, self.row_labels(rows)

    def presence_of(self, rows: np.ndarray) -> np.ndarray | None:
        """(len(rows), M) bool presence of `rows`; None when every cell of the dataset is present."""
        return None if self.present is None else presence_matrix(self.present, self.modalities, rows)

    def summary(self) -> str:
        dims = ", ".join(f"{m} {d}" for m, d in self.dims.items())
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        task = ("unlabelled, " if self.labels is None else "regression, " if self.task == REGRESSION
                else f"{self.num_classes} classes, ")  # fmt: skip
        return (
            f"{self.name}: {self.num_samples} samples, "
            + task
            + f"{len(self.features)} modalities ({dims}); splits: {sizes}"
            + self.presence_summary()
        )
