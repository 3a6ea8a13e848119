"""Checkpoints: tensors and plain metadata only (loaded with `weights_only=True`), never a pickled model."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pmrfusion.data.scaling import Standardizer
from pmrfusion.errors import PMRFusionError, first_line
from pmrfusion.methods.base import FusionModel, build_method, method_config

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> tuple[FusionModel, dict[str, Any], Standardizer]:
    """Rebuild the model from a checkpoint; returns (model, metadata, scaler)."""
    path = Path(path)
    if not path.exists():
        raise PMRFusionError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise PMRFusionError(f"cannot read checkpoint {path}: {first_line(e, with_type=True)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PMRFusionError(f"{path} is not a pmrfusion checkpoint")
    absent = [k for k in REQUIRED_KEYS if k not in payload]
    if absent:
        raise PMRFusionError(f"checkpoint {path} is incomplete: missing {', '.join(absent)}")
    if not isinstance(payload["config"], dict) or not isinstance(payload["dims"], dict):
        raise PMRFusionError(f"checkpoint {path} is malformed: config and dims must be mappings")
    model = build_method(payload["method"], payload["dims"], payload["num_classes"], **payload["config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as e:
        why = first_line(e, with_type=True)
        raise PMRFusionError(f"checkpoint {path} does not match its method: {why}") from None
    try:
        scaler = Standardizer.from_state({k: v.numpy() for k, v in payload["scaler"].items()})
    except (AttributeError, TypeError) as e:
        why = first_line(e, with_type=True)
        raise PMRFusionError(f"checkpoint {path} has a malformed scaler: {why}") from None
    if set(scaler.mean) != set(payload["dims"]):
        raise PMRFusionError(
            f"checkpoint {path}: scaler modalities {sorted(scaler.mean)} do not match dims "
            f"{sorted(payload['dims'])}"
        )
    meta = {k: payload[k] for k in ("method", "config", "dims", "num_classes", "dataset")}
    model.eval()
    return model, meta, scaler
