"""What an absent modality looks like to a model: the two fills of the missing-modality protocols.

- ``"zero_feature"`` (the papers' protocol, default): the absent modality is an all-zero feature
  in *original* units, i.e. ``(0 - mean) / std`` after the training standardisation
  (`Standardizer.zero_point`, carried by `TensorSplit.absent_fill`). For real features this is
  far from the training mean.
- ``"mean"`` (mean imputation): the absent modality is all zeros in *scaled* space, i.e. the
  training mean of every feature.

Either way the model also receives the ``present`` mask; mask-aware methods may ignore the fill.
"""

from __future__ import annotations

from torch import Tensor

from pmrfusion.errors import PMRFusionError

ABSENT_FILLS = ("zero_feature", "mean")


def check_absent_fill(kind: str) -> None:
    if kind not in ABSENT_FILLS:
        raise PMRFusionError(f"absent fill must be one of {ABSENT_FILLS}, got {kind!r}")


def absent_values(
    kind: str, features: dict[str, Tensor], split_fill: dict[str, Tensor] | None
) -> dict[str, Tensor]:
    """Per modality, the (D_m,) scaled features that stand for an absent modality under `kind`."""
    check_absent_fill(kind)
    if kind == "mean":
        return {m: x.new_zeros(x.shape[1:]) for m, x in features.items()}
    if split_fill is None:
        raise PMRFusionError(
            "the 'zero_feature' fill needs the training scaler's zero point (TensorSplit.absent_fill); "
            "build splits with pmrfusion.data.prepare or use the 'mean' fill"
        )
    lacking = [m for m in features if m not in split_fill]
    if lacking:
        raise PMRFusionError(f"absent_fill lacks modalities {lacking}")
    return {m: split_fill[m].to(x.dtype) for m, x in features.items()}


def fill_absent(
    features: dict[str, Tensor], present: Tensor | None, fill: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Replace the rows of absent (sample, modality) cells by `fill[m]`; present cells untouched.

    `present` is (N, M) bool in the order of `features`; None means everything is present.
    """
    if present is None:
        return features
    out = {}
    for i, (m, x) in enumerate(features.items()):
        keep = present[:, i : i + 1].to(x.device)
        out[m] = x.where(keep, fill[m].to(x.device, x.dtype).expand_as(x))
    return out
