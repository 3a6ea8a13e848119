"""`prepare`: one seed's train / validation / test splits of any dataset, ready for the trainer.

The one data contract above loading. Both kinds of dataset go through the same steps:
a seeded, stratified validation split carved from the training rows (an existing 'val' split is
kept), then statistics fitted on the training rows only, then splits the trainer streams:
- feature vectors (`MultimodalData`): a `Standardizer` fitted on the training rows; the splits
  are scaled in-memory tensors (`TensorSplit`);
- raw inputs (`RawMultimodalData`: images, audio, arrays, text, tokens): the front-end statistics
  (`data.statistics.fit_stats`) of the training rows; the splits are decoded lazily by a DataLoader
  (`RawSplit`). Text that a token encoder reads is tokenised before
  (`modules.composition.with_encoder_inputs`, called by `bench.runner.prepare_seed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.raw import LoaderSettings, RawMultimodalData, RawSplit
from pmrfusion.data.scaling import Standardizer
from pmrfusion.data.statistics import FrontendConfig, ModalityStats, fit_stats
from pmrfusion.data.tensors import TensorSplit, to_split

Split = TensorSplit | RawSplit
VECTOR = "vector"  # the kind of a feature-vector modality (already a tensor per sample)


@dataclass
class PreparedData:
    """One seed's splits of a dataset with the statistics fitted on its training rows.

    scaler: feature vectors' standardisation (None for raw inputs); stats: raw modalities'
    front-end statistics (None for feature vectors). `kinds` gives each modality's kind
    ("vector" for feature vectors; image, audio, array, text, tokens for raw inputs).
    """

    name: str
    train: Split
    val: Split | None
    test: Split
    num_classes: int
    dims: dict[str, int]
    kinds: dict[str, str]
    task: str
    data: MultimodalData | RawMultimodalData
    scaler: Standardizer | None = None
    stats: dict[str, ModalityStats] | None = None
    _test_inputs: dict[str, Tensor] | None = field(default=None, repr=False)

    @property
    def modalities(self) -> list[str]:
        return list(self.kinds)

    @property
    def raw(self) -> bool:
        """True when the inputs are raw (a model needs encoders in front of the fusion)."""
        return self.stats is not None

    @property
    def train_range(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Per-feature (min, max) of the scaled training rows where the modality is present, for
        salt-and-pepper and conflict."""
        present = self.train.presence()
        return {m: (x[present[:, i]].amin(0), x[present[:, i]].amax(0))
                for i, (m, x) in enumerate(self.train.features.items())}  # fmt: skip

    @property
    def absent_fill(self) -> dict[str, Tensor]:
        """Per modality, the scaled features of an original-unit zero (the papers' absent value)."""
        return {m: torch.from_numpy(v) for m, v in self.scaler.zero_point().items()}

    def test_inputs(self) -> dict[str, Tensor]:
        """The test split's inputs as tensors (raw: decoded once, floats except token ids)."""
        if self._test_inputs is None:
            feats = self.test.materialize()
            self._test_inputs = {m: x if self.kinds[m] in ("tokens", VECTOR) else x.float()
                                 for m, x in feats.items()}  # fmt: skip
        return self._test_inputs


def prepare(
    data: MultimodalData | RawMultimodalData,
    val_fraction: float = 0.15,
    seed: int = 0,
    frontend: FrontendConfig | None = None,
    loader: LoaderSettings | None = None,
) -> PreparedData:
    """Carve a seeded validation split from train, fit statistics on the training rows only.

    `frontend` and `loader` apply to raw inputs (statistics settings, DataLoader workers).
    """
    data = data.with_validation(val_fraction, seed)
    if isinstance(data, RawMultimodalData):
        splits = {s: RawSplit(data, data.splits[s], None, loader or LoaderSettings()) for s in data.splits}
        stats = fit_stats(splits["train"], frontend)
        return PreparedData(
            data.name, splits["train"], splits.get("val"), splits["test"], data.num_classes, data.dims,
            dict(data.kinds), data.task, data, stats=stats,
        )  # fmt: skip
    scaler = Standardizer.fit(data.features, data.split("train"), data.present)
    val = to_split(data, data.splits["val"], scaler) if "val" in data.splits else None
    train = to_split(data, data.split("train"), scaler)
    test = to_split(data, data.split("test"), scaler)
    kinds = dict.fromkeys(data.modalities, VECTOR)
    return PreparedData(
        data.name, train, val, test, data.num_classes, data.dims, kinds, data.task, data, scaler=scaler
    )


def rescaled(prepared: PreparedData, scaler: Standardizer) -> PreparedData:
    """Feature vectors of `prepared`'s rows scaled by another (e.g. a checkpoint's) scaler."""
    data = prepared.data
    train = to_split(data, prepared.train.index.numpy(), scaler)
    val = to_split(data, prepared.val.index.numpy(), scaler) if prepared.val is not None else None
    test = to_split(data, prepared.test.index.numpy(), scaler)
    return PreparedData(
        prepared.name, train, val, test, prepared.num_classes, prepared.dims, prepared.kinds,
        prepared.task, data, scaler=scaler,
    )  # fmt: skip


__all__ = ["VECTOR", "PreparedData", "Split", "prepare", "rescaled"]
