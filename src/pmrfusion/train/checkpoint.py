"""Checkpoints: tensors and plain metadata only (loaded with `weights_only=True`), never a pickled model.

Two formats, one module: a feature-vector model (`pmrfusion-checkpoint-1`: state dict, method,
config, dims and the data scaling) and encoders + fusion trained on raw data
(`pmrfusion-raw-checkpoint-1`: besides the state dict, which holds the front-ends' normalisation
buffers, each modality's kind, decoded shape, encoder name, output dim and width, the front-end
settings, and the training rows' statistics that the noise protocols scale by).
`save_trained` and `load_for_evaluation` take either, from prepared data of either kind.

Both formats may also hold `classes` (the user's class labels, index i = output i; absent or None:
the labels are the integers 0..K-1) and name their dataset by a built-in name or by a path
relative to the checkpoint's folder (`dataset_reference`); `resolve_dataset` reads it back (an
older checkpoint's path, relative to the folder it was trained in, is tried as stored when it is
not found beside the checkpoint).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import DATASETS
from pmrfusion.data.prepared import PreparedData, prepare, rescaled
from pmrfusion.data.raw import KINDS, RawMultimodalData
from pmrfusion.data.scaling import Standardizer
from pmrfusion.data.statistics import FrontendConfig, ModalityStats
from pmrfusion.data.validation import check_modality_name
from pmrfusion.errors import PMRFusionError, first_line
from pmrfusion.methods.base import FusionModel, build_method, check_dims, full_method_config, method_config
from pmrfusion.methods.encoded import EncodedFusion, build_model
from pmrfusion.modules.composition import (
    EncoderConfig,
    default_encoders,
    encoder_names,
    with_encoder_inputs,
)
from pmrfusion.modules.encoders import DEFAULT_WIDTH, available_encoders
from pmrfusion.paths import atomic_write, remove_stale_temps

FORMAT = "pmrfusion-checkpoint-1"
REQUIRED_KEYS = ("method", "config", "dims", "num_classes", "dataset", "state_dict", "scaler")


def save_checkpoint(
    path: str | os.PathLike,
    model: FusionModel,
    method: str,
    config: dict[str, Any],
    dims: dict[str, int],
    num_classes: int,
    scaler: Standardizer,
    dataset: str,
    classes: list[str] | None = None,
) -> None:
    """Write state dict, method name, config, dims, data scaling and class list atomically."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "method": method,
        "config": full_method_config(method, **config),
        "dims": dict(dims),
        "num_classes": int(num_classes),
        "dataset": dataset,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "scaler": {k: torch.from_numpy(np.asarray(v)) for k, v in scaler.state().items()},
        "classes": _class_list(classes),
    }
    _write(path, payload)


def _class_list(classes: Any) -> list[str] | None:
    """The class labels as stored: a list of strings, or None (integer labels)."""
    return None if classes is None else [str(c) for c in classes]


def check_classes(payload: dict[str, Any], where: str) -> None:
    """`classes`, when stored, is a list of distinct strings, one per output of a classifier."""
    classes = payload.get("classes")
    if classes is None:
        return
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise PMRFusionError(f"{where}: classes must be a list of label strings")
    if len(classes) != payload["num_classes"] or payload["num_classes"] == 1:
        raise PMRFusionError(
            f"{where}: {len(classes)} class labels for a model with {payload['num_classes']} outputs"
        )
    if len(set(classes)) != len(classes):
        raise PMRFusionError(f"{where}: class labels repeat")


def dataset_reference(dataset: str, checkpoint: str | os.PathLike) -> str:
    """How a checkpoint names its dataset: a built-in name as is; an existing file as its path
    relative to the checkpoint's folder (so the pair can be moved together and used from anywhere)."""
    if dataset in DATASETS or not Path(dataset).is_file():
        return dataset
    folder = os.path.dirname(os.path.abspath(checkpoint))
    return os.path.relpath(os.path.abspath(dataset), folder)


def resolve_dataset(stored: str, checkpoint: str | os.PathLike) -> str:
    """The dataset a checkpoint names, for loading: a built-in name; a path relative to the
    checkpoint's folder when that file exists; else the path as stored (older checkpoints stored
    it relative to the folder they were trained in)."""
    if stored in DATASETS or os.path.isabs(stored):
        return stored
    beside = Path(os.path.dirname(os.path.abspath(checkpoint))) / stored
    return str(beside) if beside.is_file() else stored


def _write(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically; the temporary files of an earlier write of this checkpoint that was killed
    are removed first (a checkpoint path has one writer)."""
    remove_stale_temps(path.parent, [path.name])
    atomic_write(path, lambda fh: torch.save(payload, fh))


def check_common_metadata(payload: dict[str, Any], where: str) -> None:
    """The fields both checkpoint formats share: method and dataset names, the method's config (valid
    for it) and a state dict of tensors. `where` starts every message."""
    if not isinstance(payload["method"], str):
        raise PMRFusionError(f"{where}: method must be a name, got {payload['method']!r}")
    if not isinstance(payload["dataset"], str) or not payload["dataset"]:
        raise PMRFusionError(f"{where}: dataset must be a non-empty string")
    if not isinstance(payload["config"], dict) or not all(isinstance(k, str) for k in payload["config"]):
        raise PMRFusionError(f"{where} is malformed: config must be a mapping of option names")
    try:
        method_config(payload["method"], **payload["config"])
    except PMRFusionError as e:
        raise PMRFusionError(f"{where}: {e}") from None
    if not isinstance(payload["state_dict"], dict) or not all(
        isinstance(v, torch.Tensor) for v in payload["state_dict"].values()
    ):
        raise PMRFusionError(f"{where}: state_dict must map names to tensors")


def check_metadata(payload: dict[str, Any], path: Path) -> None:
    """Type and range of every metadata field, before anything is built from it."""
    where = f"checkpoint {path}"
    check_common_metadata(payload, where)
    check_classes(payload, where)
    try:
        check_dims(payload["dims"], payload["num_classes"])
        for m in payload["dims"]:
            check_modality_name(payload["dataset"], m)
    except PMRFusionError as e:
        raise PMRFusionError(f"{where}: {e}") from None
    scaler = payload["scaler"]
    if not isinstance(scaler, dict):
        raise PMRFusionError(f"{where} has a malformed scaler: not a mapping")
    expected = {f"{kind}.{m}" for m in payload["dims"] for kind in ("mean", "scale")}
    if set(scaler) != expected:
        raise PMRFusionError(
            f"{where}: scaler entries {sorted(scaler)} do not match dims {sorted(payload['dims'])}"
        )
    for key, value in scaler.items():
        m = key.split(".", 1)[1]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (payload["dims"][m],):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise PMRFusionError(
                f"{where}: scaler '{key}' of shape {shape} does not match dim {payload['dims'][m]}"
            )
        if not value.is_floating_point() or not torch.isfinite(value).all():
            raise PMRFusionError(f"{where}: scaler '{key}' must hold finite real numbers")
        if key.startswith("scale.") and not (value > 0).all():
            raise PMRFusionError(f"{where}: scaler '{key}' has zero or negative scales")


def read_payload(path: Path) -> dict[str, Any]:
    """The checkpoint file's mapping, read with `weights_only=True` (no pickled code runs)."""
    if not path.exists():
        raise PMRFusionError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise PMRFusionError(f"cannot read checkpoint {path}: {first_line(e, with_type=True)}") from None
    if not isinstance(payload, dict):
        raise PMRFusionError(f"{path} is not a pmrfusion checkpoint")
    return payload


def load_checkpoint(
    path: str | os.PathLike, *, payload: dict[str, Any] | None = None
) -> tuple[FusionModel, dict[str, Any], Standardizer]:
    """Rebuild the model from a checkpoint (`payload`: the file's mapping, if already read);
    returns (model, metadata, scaler)."""
    path = Path(path)
    payload = read_payload(path) if payload is None else payload
    if payload.get("format") != FORMAT:
        raise PMRFusionError(f"{path} is not a pmrfusion checkpoint")
    absent = [k for k in REQUIRED_KEYS if k not in payload]
    if absent:
        raise PMRFusionError(f"checkpoint {path} is incomplete: missing {', '.join(absent)}")
    check_metadata(payload, path)  # every field, the scaler's entries against dims included
    model = build_method(payload["method"], payload["dims"], payload["num_classes"], **payload["config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as e:
        why = first_line(e, with_type=True)
        raise PMRFusionError(f"checkpoint {path} does not match its method: {why}") from None
    scaler = Standardizer.from_state({k: v.numpy() for k, v in payload["scaler"].items()})
    meta = {k: payload[k] for k in ("method", "config", "dims", "num_classes", "dataset")}
    meta["classes"] = payload.get("classes")
    model.eval()
    return model, meta, scaler


def check_data_matches(
    meta: dict[str, Any], modalities: list[str], dims: dict[str, int], num_classes: int
) -> None:
    """The dataset evaluated must have the checkpoint's modalities, dims and number of classes."""
    check_modalities_match(modalities, list(meta["dims"]))
    if dict(dims) != dict(meta["dims"]):
        raise PMRFusionError(f"dataset dims {dict(dims)} do not match the checkpoint's {meta['dims']}")
    check_outputs_match(num_classes, meta["num_classes"])


def check_modalities_match(modalities: list[str], trained: list[str]) -> None:
    """The dataset's modality names are the checkpoint's (any order)."""
    if set(modalities) != set(trained):
        raise PMRFusionError(f"dataset modalities {list(modalities)} do not match the checkpoint's {trained}")


def check_outputs_match(num_classes: int, trained: int) -> None:
    """The dataset's number of classes (1: regression) is the checkpoint's."""
    if int(num_classes) != int(trained):
        raise PMRFusionError(
            f"dataset has {_outputs(num_classes)} but the checkpoint was trained on {_outputs(trained)}"
        )


def _outputs(num_classes: int) -> str:
    return "regression targets" if int(num_classes) == 1 else f"{num_classes} classes"


RAW_FORMAT = "pmrfusion-raw-checkpoint-1"
RAW_REQUIRED_KEYS = ("method", "config", "dataset", "num_classes", "modalities", "frontend", "state_dict")
STAT_FIELDS = ("mean", "std", "spec_mean", "spec_std")
MAX_TOKENS = 8192  # tokens per text a checkpoint may ask for (MiniLM reads 512)


def save_raw_checkpoint(
    path: str | os.PathLike,
    model: EncodedFusion,
    method: str,
    config: dict[str, Any],
    data: RawMultimodalData,
    encoders: dict[str, str],
    widths: dict[str, int] | None,
    frontend: FrontendConfig,
    stats: dict[str, ModalityStats],
    dataset: str,
    max_length: int,
    classes: list[str] | None = None,
) -> None:
    """Write the model and everything `load_raw_checkpoint` needs to rebuild it, atomically."""
    modalities = {}
    for m in data.modalities:
        s = stats[m]
        modalities[m] = {
            "kind": data.kinds[m],
            "shape": [int(v) for v in data.shapes[m]],
            "encoder": encoders[m],
            "out_dim": int(model.encoders[m].out_dim),
            "width": int((widths or {}).get(m, DEFAULT_WIDTH.get(encoders[m], 32))),
            "low": float(s.low),
            "high": float(s.high),
            "stats": {f: getattr(s, f).detach().cpu() for f in STAT_FIELDS if getattr(s, f) is not None},
        }
    payload = {
        "format": RAW_FORMAT,
        "method": method,
        "config": full_method_config(method, **config),
        "dataset": dataset,
        "num_classes": int(data.num_classes),
        "task": data.task,
        "max_length": int(max_length),
        "modalities": modalities,
        "frontend": {"spectrogram_size": list(frontend.spectrogram_size), "n_fft": int(frontend.n_fft)},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": _class_list(classes),
    }
    _write(Path(path), payload)


def is_raw_checkpoint(path: str | os.PathLike) -> bool:
    """True if `path` holds a raw-data checkpoint (read with `weights_only=True`)."""
    return read_payload(Path(path)).get("format") == RAW_FORMAT


def _check_metadata(p: dict[str, Any], where: str) -> None:
    """Type and range of every metadata field, before anything is built from it."""
    absent = [k for k in RAW_REQUIRED_KEYS if k not in p]
    if absent:
        raise PMRFusionError(f"{where} is incomplete: missing {', '.join(absent)}")
    check_common_metadata(p, where)
    k = p["num_classes"]
    if isinstance(k, bool) or not isinstance(k, int) or not (k == 1 or 2 <= k <= 1_000_000):
        raise PMRFusionError(f"{where}: num_classes must be 1 (regression) or 2..1e6, got {k!r}")
    check_classes(p, where)
    mods = p["modalities"]
    if not isinstance(mods, dict) or len(mods) < 2:
        raise PMRFusionError(f"{where}: needs at least 2 modalities")
    encoders = available_encoders()
    for m, spec in mods.items():
        check_modality_name(p["dataset"], m)
        if not isinstance(spec, dict) or spec.get("kind") not in KINDS or spec.get("encoder") not in encoders:
            raise PMRFusionError(f"{where}: modality '{m}' has an unknown kind or encoder")
        shape, out_dim, width = spec.get("shape"), spec.get("out_dim"), spec.get("width")
        if not _ints(shape, 10**7):
            raise PMRFusionError(f"{where}: modality '{m}' has a bad shape {shape!r}")
        for name, v in (("out_dim", out_dim), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 65536:
                raise PMRFusionError(f"{where}: modality '{m}' has a bad {name} {v!r}")
        stats = spec.get("stats")
        if not isinstance(stats, dict) or not {"mean", "std"} <= set(stats):
            raise PMRFusionError(f"{where}: modality '{m}' lacks its training statistics")
        for name, t in stats.items():
            if not isinstance(t, torch.Tensor) or not t.is_floating_point() or not torch.isfinite(t).all():
                raise PMRFusionError(f"{where}: statistic '{m}.{name}' must hold finite real numbers")
    length = p.get("max_length", 128)
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_TOKENS:
        raise PMRFusionError(f"{where}: max_length must be an integer in 1..{MAX_TOKENS}, got {length!r}")
    fe = p["frontend"] if isinstance(p["frontend"], dict) else {}
    size, n_fft = fe.get("spectrogram_size"), fe.get("n_fft")
    if not _ints(size, 4096) or len(size) != 2:
        raise PMRFusionError(f"{where}: bad front-end spectrogram size {size!r}")
    if isinstance(n_fft, bool) or not isinstance(n_fft, int) or not 2 <= n_fft <= 65536:
        raise PMRFusionError(f"{where}: bad front-end n_fft {n_fft!r}")


def _ints(values: Any, most: int) -> bool:
    """A non-empty list of positive ints, none above `most`."""
    ok = isinstance(values, list) and bool(values)
    return ok and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= most for v in values)


def check_raw_data_matches(meta: dict[str, Any], data: RawMultimodalData, outputs: bool = True) -> None:
    """The dataset evaluated must have the checkpoint's modalities, kinds, shapes and (with
    `outputs`; not for prediction) number of outputs."""
    mods = meta["modalities"]
    check_modalities_match(data.modalities, list(mods))
    for m, spec in mods.items():
        kind = "text" if spec["kind"] == "tokens" else spec["kind"]
        if data.kinds[m] != kind:
            raise PMRFusionError(f"modality '{m}' is {data.kinds[m]} here but {kind} in the checkpoint")
        if spec["kind"] != "tokens" and list(data.shapes[m]) != spec["shape"]:
            raise PMRFusionError(
                f"modality '{m}' has shape {tuple(data.shapes[m])} here but "
                f"{tuple(spec['shape'])} in the checkpoint"
            )
    if outputs:
        check_outputs_match(data.num_classes, meta["num_classes"])


def load_raw_checkpoint(
    path: str | os.PathLike, data: RawMultimodalData, *, payload: dict[str, Any] | None = None,
    outputs: bool = True,
) -> tuple[EncodedFusion, dict[str, Any], RawMultimodalData, dict[str, ModalityStats]]:  # fmt: skip
    """Rebuild encoders + method for `data` (checked against the checkpoint first, its number of
    outputs only with `outputs`; `payload`: the file's mapping, if already read).

    Returns (model in eval mode, metadata, `data` with text tokenised as at training, statistics).
    """
    path = Path(path)
    p = read_payload(path) if payload is None else payload
    if p.get("format") != RAW_FORMAT:
        raise PMRFusionError(f"{path} is not a raw-data pmrfusion checkpoint")
    _check_metadata(p, f"checkpoint {path}")
    check_raw_data_matches(p, data, outputs)
    mods = p["modalities"]
    names = {m: s["encoder"] for m, s in mods.items()}
    data = with_encoder_inputs(data, names, p.get("max_length", 128))
    stats = {
        m: ModalityStats(low=s["low"], high=s["high"], **{f: s["stats"].get(f) for f in STAT_FIELDS})
        for m, s in mods.items()
    }
    fe = p["frontend"]
    frontend = FrontendConfig(spectrogram_size=tuple(fe["spectrogram_size"]), n_fft=fe["n_fft"])
    out_dims = {m: s["out_dim"] for m, s in mods.items()}
    widths = {m: s["width"] for m, s in mods.items()}
    encs = default_encoders(data, None, names, out_dims, widths, frontend, stats)
    model = build_model(encs, p["method"], p["num_classes"], **p["config"])
    try:
        model.load_state_dict(p["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as e:
        why = first_line(e, with_type=True)
        raise PMRFusionError(f"checkpoint {path} does not match its model: {why}") from None
    model.eval()
    meta = {k: p[k] for k in ("method", "config", "dataset", "num_classes", "modalities")}
    meta["classes"] = p.get("classes")
    return model, meta, data, stats


def save_trained(
    path: str | os.PathLike, model: FusionModel, prepared: PreparedData, method: str,
    config: dict[str, Any], dataset: str, encoder: EncoderConfig | None = None,
    classes: list[str] | None = None,
) -> None:  # fmt: skip
    """A checkpoint of `model` trained on `prepared` (either kind), naming `dataset` (a file: by
    its path relative to the checkpoint, `dataset_reference`) and the class labels (default: the
    data's `classes`, if any)."""
    dataset = dataset_reference(dataset, path)
    if classes is None:
        classes = getattr(prepared.data, "classes", None)
    if not prepared.raw:
        dims, k = prepared.dims, prepared.num_classes
        save_checkpoint(path, model, method, config, dims, k, prepared.scaler, dataset, classes)
        return
    cfg = encoder or EncoderConfig()
    save_raw_checkpoint(
        path, model, method, config, prepared.data, encoder_names(prepared.data, cfg.encoders), cfg.widths,
        cfg.frontend, prepared.stats, dataset, cfg.max_length, classes,
    )  # fmt: skip


def load_for_evaluation(
    path: str | os.PathLike, load_data: Callable[[str], MultimodalData | RawMultimodalData], seed: int = 0
) -> tuple[FusionModel, dict[str, Any], PreparedData]:
    """(model, metadata, prepared test data) of a checkpoint of either format.

    `load_data(name)` loads the dataset the checkpoint names (`resolve_dataset`). Feature
    vectors: seed `seed`'s split, scaled with the checkpoint's statistics (the training rows'
    min/max, for salt-and-pepper and conflict, are scaled the same way). Raw inputs: the test
    split with the checkpoint's statistics.
    """
    payload = read_payload(Path(path))  # read once, for both formats
    if payload.get("format") != RAW_FORMAT:
        model, meta, scaler = load_checkpoint(path, payload=payload)
        data = load_data(resolve_dataset(meta["dataset"], path))
        if isinstance(data, RawMultimodalData):
            raise PMRFusionError(f"{path} holds a model of feature vectors; '{data.name}' holds raw inputs")
        check_data_matches(meta, data.modalities, data.dims, data.num_classes)
        return model, meta, rescaled(prepare(data, seed=seed), scaler)
    data = load_data(resolve_dataset(str(payload.get("dataset", "")), path))
    if not isinstance(data, RawMultimodalData):
        raise PMRFusionError(f"{path} holds encoders for raw data; '{data.name}' is a feature dataset")
    model, meta, data, stats = load_raw_checkpoint(path, data, payload=payload)
    test = data.rows("test")
    prepared = PreparedData(
        data.name, test, None, test, data.num_classes, data.dims, dict(data.kinds), data.task, data,
        stats=stats,
    )  # fmt: skip
    return model, meta, prepared


__all__ = [
    "FORMAT",
    "RAW_FORMAT",
    "check_classes",
    "check_data_matches",
    "check_raw_data_matches",
    "dataset_reference",
    "is_raw_checkpoint",
    "load_checkpoint",
    "load_for_evaluation",
    "load_raw_checkpoint",
    "resolve_dataset",
    "save_checkpoint",
    "save_raw_checkpoint",
    "save_trained",
]
