"""One method, one seed, one dataset of either kind: train (DDP under torchrun), test clean, save.

The `pmrfusion train` command's work: the runner's `prepare_seed` + `fit_method` + `evaluate`.
"""

from __future__ import annotations

import os
from typing import Any

from pmrfusion.bench.runner import evaluate, fit_method, prepare_seed, resolve_method
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.raw import RawMultimodalData
from pmrfusion.eval.regression_metrics import primary_metric
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train import distributed
from pmrfusion.train.checkpoint import save_trained
from pmrfusion.train.trainer import TrainConfig


def train_once(
    data: MultimodalData | RawMultimodalData, method: str, seed: int, overrides: dict[str, Any],
    tc: TrainConfig, encoder: EncoderConfig | None = None, save: str | os.PathLike | None = None,
    dataset: str | None = None,
) -> str:  # fmt: skip
    """Train `method` under `seed`, test it clean; with `save`, a checkpoint naming `dataset`
    (default `data.name`). Returns the summary line ("" on ranks other than 0)."""
    prepared = prepare_seed(data, seed, 0.15, encoder)
    with distributed.distributed_session() as ctx:
        model, result = fit_method(method, prepared, seed, overrides, tc, encoder=encoder)
        if ctx is not None and not ctx.is_main:
            return ""
        recs = evaluate(model, prepared, ["clean"], seed, {})
        metric = primary_metric(recs)
        value = next(r["value"] for r in recs if r["metric"] == metric)
        val = result.best_val_accuracy if metric == "accuracy" else result.best_val_mae
        where = f" ({ctx.world_size} processes, {ctx.device.type})" if ctx is not None else ""
        regime = f", {(encoder or EncoderConfig()).regime}" if prepared.raw else ""
        flipped = f", {result.flipped_labels} training labels flipped" if result.flipped_labels else ""
        line = (
            f"{method} on {data.name}{where}{regime}: best epoch {result.best_epoch}/{result.epochs_run}, "
            f"val {metric} {val:.4f}, test {metric} {value:.4f}{flipped}"
        )
        if save is not None:
            name, options = resolve_method(method, overrides)
            classes = getattr(data, "classes", None)
            save_trained(save, model, prepared, name, options, dataset or data.name, encoder, classes)
            line += f"\ncheckpoint written to {save}"
        return line


__all__ = ["train_once"]
