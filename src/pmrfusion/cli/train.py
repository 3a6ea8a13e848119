"""`pmrfusion train`: train one method on one dataset (DDP under torchrun), optionally save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.bench.runner import evaluate, fit_method
from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import (
    DataRoot,
    LabelNoise,
    ModalityDropout,
    Quiet,
    SetOpt,
    train_config,
)
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.tensors import prepare
from pmrfusion.eval.regression_metrics import primary_metric
from pmrfusion.methods import method_config
from pmrfusion.methods.base import parse_overrides
from pmrfusion.paths import check_output_file
from pmrfusion.train import distributed
from pmrfusion.train.checkpoint import save_checkpoint
from pmrfusion.train.trainer import check_seed


@app.command("train")
def train_cmd(
    dataset: Annotated[str, typer.Option(help="built-in name or path to .npz/.mat")] = "handwritten",
    method: Annotated[str, typer.Option(help="registered method name")] = "sg-concat",
    seed: int = 0,
    epochs: int = 150,
    lr: float = 1e-3,
    batch_size: int = 64,
    set_: SetOpt = None,
    save: Annotated[Path | None, typer.Option(help="write a checkpoint here")] = None,
    data_root: DataRoot = None,
    quiet: Quiet = False,
    label_noise: LabelNoise = 0.0,
    modality_dropout: ModalityDropout = 0.0,
    encoders: Annotated[
        str | None, typer.Option(help="raw data: modality=encoder list, e.g. image=cnn,audio=audio-cnn")
    ] = None,
    regime: Annotated[str, typer.Option(help="raw data: end-to-end, frozen or finetune")] = "end-to-end",
) -> None:
    """Train one method on one dataset; report validation and clean test accuracy.

    Under `torchrun --nproc_per_node N -m pmrfusion train ...` it trains with
    DistributedDataParallel (--batch-size is the global batch); rank 0 logs and saves.
    """
    overrides = parse_overrides([method], set_ or [])
    method_config(method, **overrides)
    check_seed(seed)
    if save is not None:
        check_output_file(save, "--save")
    tc = train_config(epochs, lr, batch_size, quiet, label_noise, modality_dropout)
    data = load_dataset(dataset, data_root)
    from pmrfusion.train.end_to_end import encoder_config_for, train_command

    cfg = encoder_config_for(data, encoders, regime)
    if cfg is not None:  # raw data: encoders + method
        console.print(train_command(data, method, seed, overrides, tc, save, cfg, dataset))
        return
    prepared = prepare(data, seed=seed)
    with distributed.distributed_session() as ctx:
        model, result = fit_method(method, prepared, seed, overrides, tc)
        if ctx is not None and not ctx.is_main:
            return
        recs = evaluate(model, prepared, ["clean"], seed, {"dataset": data.name, "method": method})
        metric = primary_metric(recs)
        acc = next(r["value"] for r in recs if r["metric"] == metric)
        where = f" ({ctx.world_size} processes, {ctx.device.type})" if ctx is not None else ""
        flipped = f", {result.flipped_labels} training labels flipped" if result.flipped_labels else ""
        console.print(
            f"{method} on {data.name}{where}: best epoch {result.best_epoch}/{result.epochs_run}, "
            f"val {'accuracy' if metric == 'accuracy' else 'mae'} "
            f"{result.best_val_accuracy if metric == 'accuracy' else result.best_val_mae:.4f}, "
            f"test {metric} {acc:.4f}{flipped}"
        )
        if save is not None:
            save_checkpoint(
                save, model, method, overrides, prepared.dims, prepared.num_classes, prepared.scaler, dataset
            )
            console.print(f"checkpoint written to {save}")
