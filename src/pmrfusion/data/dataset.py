"""`MultimodalData`: validated multimodal feature arrays with named splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pmrfusion.data.labelled import LabelledRows
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
        n = self._check_labels()
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
        self._check_splits()

    @property
    def modalities(self) -> list[str]:
        return list(self.features)

    @property
    def dims(self) -> dict[str, int]:
        return {m: int(x.shape[1]) for m, x in self.features.items()}

    def take(self, rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Features and labels of the given rows."""
        return {m: x[rows] for m, x in self.features.items()}, self.labels[rows]

    def summary(self) -> str:
        dims = ", ".join(f"{m} {d}" for m, d in self.dims.items())
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        return (
            f"{self.name}: {self.num_samples} samples, "
            + ("regression, " if self.task == REGRESSION else f"{self.num_classes} classes, ")
            + f"{len(self.features)} modalities ({dims}); splits: {sizes}"
        )
