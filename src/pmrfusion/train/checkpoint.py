"""Checkpoints: tensors and plain metadata only (loaded with `weights_only=True`), never a pickled model."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pmrfusion.data.scaling import Standardizer
from pmrfusion.data.validation import check_modality_name
from pmrfusion.errors import PMRFusionError, first_line
from pmrfusion.methods.base import FusionModel, build_method, check_dims, method_config
from pmrfusion.paths import atomic_write

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
) -> None:
    """Write state dict, method name, config, dims and data scaling atomically."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "method": method,
        "config": dataclasses.asdict(method_config(method, **config)),
        "dims": dict(dims),
        "num_classes": int(num_classes),
        "dataset": dataset,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "scaler": {k: torch.from_numpy(np.asarray(v)) for k, v in scaler.state().items()},
    }
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


def load_checkpoint(path: str | os.PathLike) -> tuple[FusionModel, dict[str, Any], Standardizer]:
    """Rebuild the model from a checkpoint; returns (model, metadata, scaler)."""
    path = Path(path)
    payload = read_payload(path)
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
