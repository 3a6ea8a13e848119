"""Per-modality feature standardisation, fitted on training rows only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmrfusion.errors import PMRFusionError


@dataclass
class Standardizer:
    """z-score per feature; constant features get unit scale so they map to 0. Fitted on the rows
    where each modality is present (`present`, see `data.presence`)."""

    mean: dict[str, np.ndarray]
    scale: dict[str, np.ndarray]

    @classmethod
    def fit(
        cls, features: dict[str, np.ndarray], rows: np.ndarray, present: dict[str, np.ndarray] | None = None
    ) -> Standardizer:
        mean, scale = {}, {}
        for m, x in features.items():
            on = rows if present is None else rows[present[m][rows]]
            if len(on) == 0:
                raise PMRFusionError(f"modality '{m}' is absent from every training row: nothing to scale by")
            xt = x[on].astype(np.float64)
            mu = xt.mean(axis=0)
            sd = xt.std(axis=0)
            sd[sd < 1e-8] = 1.0
            mean[m], scale[m] = mu.astype(np.float32), sd.astype(np.float32)
        return cls(mean, scale)

    def transform(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {m: ((x - self.mean[m]) / self.scale[m]).astype(np.float32) for m, x in features.items()}

    def zero_point(self) -> dict[str, np.ndarray]:
        """Per modality, where an all-zero feature in original units lands: (0 - mean) / scale.

        This is the papers' "absent modality = zero feature" expressed in scaled space; the
        scaled zero (all entries 0) is instead the training mean (mean imputation).
        """
        return {m: (-self.mean[m] / self.scale[m]).astype(np.float32) for m in self.mean}

    def state(self) -> dict[str, np.ndarray]:
        out = {}
        for m in self.mean:
            out[f"mean.{m}"] = self.mean[m]
            out[f"scale.{m}"] = self.scale[m]
        return out

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> Standardizer:
        mean = {k[5:]: np.asarray(v) for k, v in state.items() if k.startswith("mean.")}
        scale = {k[6:]: np.asarray(v) for k, v in state.items() if k.startswith("scale.")}
        return cls(mean, scale)
