"""Checkpoints of encoders + fusion trained on raw data (`train --save` on a manifest or `avmnist`).

Like `train.checkpoint`: tensors and plain metadata only, loaded with `weights_only=True`. Besides
the state dict (which holds the front-ends' normalisation buffers) it stores what rebuilding the
model needs: each modality's kind, decoded shape, encoder name, output dim and width, the
front-end settings, and the training rows' statistics that the noise protocols scale by.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from pmrfusion.data.raw import KINDS, RawMultimodalData
from pmrfusion.data.validation import check_modality_name
from pmrfusion.errors import PMRFusionError, first_line
from pmrfusion.methods.base import method_config
from pmrfusion.modules.composition import DEFAULT_WIDTH, EncodedFusion, build_model, default_encoders
from pmrfusion.modules.encoders import available_encoders
from pmrfusion.modules.frontends import FrontendConfig, ModalityStats
from pmrfusion.paths import atomic_write
from pmrfusion.train.checkpoint import (
    check_common_metadata,
    check_modalities_match,
    check_outputs_match,
    read_payload,
)

FORMAT = "pmrfusion-raw-checkpoint-1"
REQUIRED_KEYS = ("method", "config", "dataset", "num_classes", "modalities", "frontend", "state_dict")
STAT_FIELDS = ("mean", "std", "spec_mean", "spec_std")


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
        "format": FORMAT,
        "method": method,
        "config": dataclasses.asdict(method_config(method, **config)),
        "dataset": dataset,
        "num_classes": int(data.num_classes),
        "task": data.task,
        "max_length": int(max_length),
        "modalities": modalities,
        "frontend": {"spectrogram_size": list(frontend.spectrogram_size), "n_fft": int(frontend.n_fft)},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    atomic_write(Path(path), lambda fh: torch.save(payload, fh))


def is_raw_checkpoint(path: str | os.PathLike) -> bool:
    """True if `path` holds a raw-data checkpoint (read with `weights_only=True`)."""
    return read_payload(Path(path)).get("format") == FORMAT


def _check_metadata(p: dict[str, Any], where: str) -> None:
    """Type and range of every metadata field, before anything is built from it."""
    absent = [k for k in REQUIRED_KEYS if k not in p]
    if absent:
        raise PMRFusionError(f"{where} is incomplete: missing {', '.join(absent)}")
    check_common_metadata(p, where)
    k = p["num_classes"]
    if isinstance(k, bool) or not isinstance(k, int) or not (k == 1 or 2 <= k <= 1_000_000):
        raise PMRFusionError(f"{where}: num_classes must be 1 (regression) or 2..1e6, got {k!r}")
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


def check_raw_data_matches(meta: dict[str, Any], data: RawMultimodalData) -> None:
    """The dataset evaluated must have the checkpoint's modalities, kinds, shapes and outputs."""
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
    check_outputs_match(data.num_classes, meta["num_classes"])


def load_raw_checkpoint(
    path: str | os.PathLike, data: RawMultimodalData
) -> tuple[EncodedFusion, dict[str, Any], RawMultimodalData, dict[str, ModalityStats]]:
    """Rebuild encoders + method for `data` (checked against the checkpoint first).

    Returns (model in eval mode, metadata, `data` with text tokenised as at training, statistics).
    """
    from pmrfusion.modules.composition import with_encoder_inputs

    path = Path(path)
    p = read_payload(path)
    if p.get("format") != FORMAT:
        raise PMRFusionError(f"{path} is not a raw-data pmrfusion checkpoint")
    _check_metadata(p, f"checkpoint {path}")
    check_raw_data_matches(p, data)
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
    return model, meta, data, stats


__all__ = ["check_raw_data_matches", "is_raw_checkpoint", "load_raw_checkpoint", "save_raw_checkpoint"]
