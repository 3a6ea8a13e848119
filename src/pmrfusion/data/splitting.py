"""Splitting policies: how one seed's train / validation / test splits and their scaling are made.

- "standard" (`prepare`): the dataset's own train/test split, a seeded stratified validation split
  carved from the training rows, statistics fitted on the training rows only;
- "rcml" (`data.rcml.prepare_rcml`): RCML's (AAAI 2024) protocol, per-feature min-max scaling over
  the whole dataset, then run `seed`'s random 80/20 split, no validation split (feature vectors).
"""

from __future__ import annotations

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.prepared import PreparedData, prepare
from pmrfusion.data.raw import LoaderSettings, RawMultimodalData
from pmrfusion.data.rcml import prepare_rcml
from pmrfusion.data.statistics import FrontendConfig
from pmrfusion.errors import PMRFusionError

SPLITTINGS = ("standard", "rcml")


def check_splitting(name: str, data: MultimodalData | RawMultimodalData | None = None) -> None:
    """An unknown policy, or one the data kind does not have, is one error line."""
    if name not in SPLITTINGS:
        raise PMRFusionError(f"unknown splitting '{name}': use one of {', '.join(SPLITTINGS)}")
    if name == "rcml" and isinstance(data, RawMultimodalData):
        raise PMRFusionError(f"splitting 'rcml' works on feature vectors; '{data.name}' holds raw inputs")
    if name == "rcml" and data is not None and data.present is not None:
        raise PMRFusionError(
            f"splitting 'rcml' needs every modality of every sample; '{data.name}' has absent modalities"
        )


def prepare_split(
    splitting: str, data: MultimodalData | RawMultimodalData, seed: int, val_fraction: float = 0.15,
    frontend: FrontendConfig | None = None, loader: LoaderSettings | None = None,
) -> PreparedData:  # fmt: skip
    """Seed `seed`'s prepared splits of `data` under policy `splitting`."""
    check_splitting(splitting, data)
    if splitting == "rcml":
        return prepare_rcml(data, seed)
    return prepare(data, val_fraction, seed, frontend, loader)


__all__ = ["SPLITTINGS", "check_splitting", "prepare_split"]
