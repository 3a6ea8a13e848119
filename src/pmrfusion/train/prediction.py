"""Predictions of a saved checkpoint (either format) on a dataset, labelled or not, as rows.

`predict_checkpoint(checkpoint, dataset)` scores every sample of `dataset` (all its rows, every
split) and returns `Predictions`: per sample its id, the prediction in the user's labels (the
class list stored in the checkpoint; the integer index when it stores none; the value for a
regression model), the class probabilities (softmax of the logits), the modalities present and,
where the method has them,
- `uncertainty`: `ModelOutput.uncertainty`, the method's own per-sample uncertainty (evidential
  methods, e.g. `tmc`, `ecml`: u = K / S of the fused Dirichlet opinion);
- `weight:<m>`: `ModelOutput.weights`, the per-sample weight the fusion gave modality m (QMF's
  energy confidences, PDF's predicted confidences, evidential methods' 1 - u_m, ...).
`write_predictions` writes them as CSV (atomically, never over an existing file unless asked).

The presence of a modality comes from the dataset's presence mask (`data.present`, modality ->
(N,) bool) when it has one, else every modality is present; an absent modality of a feature
dataset is fed as its zero feature in scaled units (the missing protocol's default fill) and the
mask is passed to the model.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.raw import RawMultimodalData, RawSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import FusionModel
from pmrfusion.paths import atomic_write_text, check_output_file
from pmrfusion.train.checkpoint import (
    FORMAT,
    RAW_FORMAT,
    check_modalities_match,
    load_checkpoint,
    load_raw_checkpoint,
    read_payload,
    resolve_dataset,
)

BATCH_SIZE = 4096  # feature rows per forward pass


@dataclass
class Predictions:
    """One entry per sample, in the dataset's row order.

    ids: the manifest's `id` column, else the row index (as text). prediction: the user's class
    label (str), the class index (int) when the checkpoint has no class list, or the regression
    value (float). probabilities: (N, K) softmax (None for regression); classes: the K column
    names. present: (N, M) bool over `modalities`. uncertainty: (N,) or None; weights: modality ->
    (N,) fusion weight (empty when the method reports none).
    """

    ids: list[str]
    prediction: list[Any]
    classes: list[str]
    probabilities: np.ndarray | None
    modalities: list[str]
    present: np.ndarray
    uncertainty: np.ndarray | None = None
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def columns(self) -> list[str]:
        """The CSV header: id, prediction, prob:<class>..., present, [uncertainty], [weight:<m>...]."""
        cols = ["id", "prediction"]
        if self.probabilities is not None:
            cols += [f"prob:{c}" for c in self.classes]
        cols.append("present")
        if self.uncertainty is not None:
            cols.append("uncertainty")
        return cols + [f"weight:{m}" for m in self.weights]

    def rows(self) -> Iterator[dict[str, Any]]:
        """One dict per sample, keys as `columns()`; present as 'a+b' (the records' form)."""
        names = np.array(self.modalities, dtype=object)
        for i, sample in enumerate(self.ids):
            row: dict[str, Any] = {"id": sample, "prediction": self.prediction[i]}
            if self.probabilities is not None:
                row.update({f"prob:{c}": float(p) for c, p in zip(self.classes, self.probabilities[i])})
            row["present"] = "+".join(names[self.present[i]])
            if self.uncertainty is not None:
                row["uncertainty"] = float(self.uncertainty[i])
            row.update({f"weight:{m}": float(w[i]) for m, w in self.weights.items()})
            yield row

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        return buf.getvalue()


def write_predictions(predictions: Predictions, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """`predictions` as CSV at `path`, written atomically; an existing file is an error unless
    `overwrite`."""
    path = Path(path)
    check_prediction_output(path, overwrite)
    atomic_write_text(path, predictions.to_csv())
    return path


def check_prediction_output(path: str | os.PathLike, overwrite: bool = False, what: str = "--out") -> Path:
    """`path` can take the predictions (call before any work): writable, and not an existing file
    unless `overwrite`."""
    path = check_output_file(path, what)
    if path.exists() and not overwrite:
        raise PMRFusionError(f"{what}: {path} already exists (pass --overwrite to replace it)")
    return path


def predict_checkpoint(
    checkpoint: str | os.PathLike,
    dataset: str | os.PathLike | MultimodalData | RawMultimodalData | None = None,
    data_root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> Predictions:
    """Predictions of the model in `checkpoint` for every sample of `dataset` (a loaded dataset, a
    name or path; None: the dataset the checkpoint names, resolved relative to it). The dataset
    needs the checkpoint's modalities (and dims / kinds and shapes); its labels, if any, are not used."""
    path = Path(checkpoint)
    payload = read_payload(path)
    if payload.get("format") not in (FORMAT, RAW_FORMAT):
        raise PMRFusionError(f"{path} is not a pmrfusion checkpoint")
    if dataset is None:
        dataset = resolve_dataset(str(payload.get("dataset", "")), path)
    data = dataset if isinstance(dataset, (MultimodalData, RawMultimodalData)) else load_dataset(
        dataset, data_root
    )
    if payload["format"] == FORMAT:
        if isinstance(data, RawMultimodalData):
            raise PMRFusionError(f"{path} holds a model of feature vectors; '{data.name}' holds raw inputs")
        model, meta, scaler = load_checkpoint(path, payload=payload)
        check_modalities_match(data.modalities, list(meta["dims"]))
        if dict(data.dims) != dict(meta["dims"]):
            dims = dict(data.dims)
            raise PMRFusionError(f"dataset dims {dims} do not match the checkpoint's {meta['dims']}")
        model.to(device)
        present = presence(data, model.modalities)
        outputs = _feature_outputs(model, data, scaler, present)
    else:
        if not isinstance(data, RawMultimodalData):
            raise PMRFusionError(f"{path} holds encoders for raw data; '{data.name}' is a feature dataset")
        model, meta, data, _ = load_raw_checkpoint(path, data, payload=payload, outputs=False)
        model.to(device)
        present = presence(data, model.modalities)
        outputs = _raw_outputs(model, data, present)
    return _assemble(data, meta, model.modalities, present, *outputs)


def presence(data: MultimodalData | RawMultimodalData, modalities: list[str]) -> np.ndarray:
    """(N, M) bool over `modalities`: the dataset's presence mask (`data.present`), else all True."""
    n = sample_count(data)
    mask = getattr(data, "present", None)
    if mask is None:
        return np.ones((n, len(modalities)), dtype=bool)
    return np.stack([np.asarray(mask[m], dtype=bool).reshape(n) for m in modalities], axis=1)


def sample_count(data: MultimodalData | RawMultimodalData) -> int:
    """Number of samples, labelled or not."""
    if getattr(data, "labels", None) is not None:
        return len(data.labels)
    if isinstance(data, MultimodalData):
        return len(next(iter(data.features.values())))
    return int(data.num_samples)


Outputs = tuple[Tensor, Tensor | None, dict[str, Tensor]]  # logits, uncertainty, weights


def _feature_outputs(
    model: FusionModel, data: MultimodalData, scaler: Any, present: np.ndarray
) -> Outputs:
    scaled = scaler.transform(data.features)
    fill = scaler.zero_point()
    absent = ~present
    feats = {}
    for i, m in enumerate(model.modalities):
        x = np.array(scaled[m], dtype=np.float32)
        if absent[:, i].any():
            x[absent[:, i]] = fill[m]
        feats[m] = torch.from_numpy(x)
    mask = torch.from_numpy(present)
    n = len(present)
    batches = (
        ({m: x[s : s + BATCH_SIZE] for m, x in feats.items()}, mask[s : s + BATCH_SIZE])
        for s in range(0, n, BATCH_SIZE)
    )
    return _collect(model, batches)


def _raw_outputs(model: FusionModel, data: RawMultimodalData, present: np.ndarray) -> Outputs:
    rows = np.arange(len(present))
    labels = np.zeros(len(rows)) if getattr(data, "labels", None) is None else None
    split = RawSplit(data, rows, model.modalities, label_override=labels)
    mask = torch.from_numpy(present)
    batches = ((b.features, mask[b.index]) for b in split.eval_batches())
    return _collect(model, batches)


@torch.no_grad()
def _collect(model: FusionModel, batches: Iterator[tuple[dict[str, Tensor], Tensor]]) -> Outputs:
    """Logits, uncertainty and per-sample modality weights of every batch, concatenated on CPU."""
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    logits, unc, weights = [], [], {}
    for feats, mask in batches:
        out = model({m: x.to(device) for m, x in feats.items()}, mask.to(device))
        logits.append(out.logits.float().cpu())
        if out.uncertainty is not None:
            unc.append(out.uncertainty.reshape(-1).float().cpu())
        for m, w in out.weights.items():
            if isinstance(w, Tensor) and w.dim() == 1 and len(w) == len(out.logits):
                weights.setdefault(m, []).append(w.float().cpu())
    n_batches = len(logits)
    return (
        torch.cat(logits),
        torch.cat(unc) if len(unc) == n_batches and unc else None,
        {m: torch.cat(w) for m, w in weights.items() if len(w) == n_batches},
    )


def _assemble(
    data: Any, meta: dict[str, Any], modalities: list[str], present: np.ndarray,
    logits: Tensor, uncertainty: Tensor | None, weights: dict[str, Tensor],
) -> Predictions:  # fmt: skip
    ids = sample_ids(data, len(present))
    k = int(meta["num_classes"])
    if k == 1:
        return Predictions(ids, logits.reshape(-1).tolist(), [], None, list(modalities), present,
                           _numpy(uncertainty), {m: w.numpy() for m, w in weights.items()})  # fmt: skip
    probs = torch.softmax(logits, dim=1).numpy()
    index = logits.argmax(dim=1).numpy()
    classes = meta.get("classes")
    if classes is None:
        names, prediction = [str(c) for c in range(k)], index.tolist()
    else:
        names, prediction = list(classes), np.asarray(classes, dtype=object)[index].tolist()
    return Predictions(ids, prediction, names, probs, list(modalities), present, _numpy(uncertainty),
                       {m: w.numpy() for m, w in weights.items()})  # fmt: skip


def _numpy(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.numpy()


def sample_ids(data: Any, n: int) -> list[str]:
    """The manifest's `id` column when it has one, else the row indices 0..n-1 as text."""
    source = getattr(data, "source", None)
    while source is not None and getattr(source, "ids", None) is None and hasattr(source, "base"):
        source = source.base  # a TokenSource wraps the manifest's source
    ids = getattr(source, "ids", None)
    if ids is None:
        ids = getattr(data, "ids", None)
    if ids is not None and len(ids) == n:
        return [str(v) for v in ids]
    return [str(i) for i in range(n)]


__all__ = [
    "Predictions",
    "check_prediction_output",
    "predict_checkpoint",
    "presence",
    "sample_ids",
    "write_predictions",
]
