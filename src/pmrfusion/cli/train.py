"""`pmrfusion train`: train one method on one dataset (DDP under torchrun), optionally save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import (
    BatchSize,
    DataRoot,
    Device,
    Epochs,
    LabelNoise,
    LearningRate,
    ModalityDropout,
    Precision,
    Quiet,
    SetOpt,
    train_config,
)
from pmrfusion.paths import check_output_file


@app.command("train")
def train_cmd(
    dataset: Annotated[str, typer.Option(help="built-in name or path to .npz/.mat")] = "handwritten",
    method: Annotated[str, typer.Option(help="registered method name")] = "sg-concat",
    seed: Annotated[int, typer.Option(help="seed of the split, initialisation and training order")] = 0,
    epochs: Epochs = 150,
    lr: LearningRate = 1e-3,
    batch_size: BatchSize = 64,
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
    device: Device = "auto",
    precision: Precision = "32",
) -> None:
    """Train one method on one dataset; report validation and clean test accuracy.

    Under `torchrun --nproc_per_node N -m pmrfusion train ...` it trains with
    DistributedDataParallel (--batch-size is the global batch); rank 0 logs and saves.
    """
    from pmrfusion.bench.runner import encoder_config_for
    from pmrfusion.bench.single_run import train_once
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.methods import method_config
    from pmrfusion.methods.base import parse_overrides
    from pmrfusion.train.trainer import check_seed

    overrides = parse_overrides([method], set_ or [])
    method_config(method, **overrides)
    check_seed(seed)
    if save is not None:
        check_output_file(save, "--save")
    tc = train_config(epochs, lr, batch_size, quiet, label_noise, modality_dropout, device, precision)
    data = load_dataset(dataset, data_root)
    cfg = encoder_config_for(data, encoders, regime)
    line = train_once(data, method, seed, overrides, tc, cfg, save, dataset)
    if line:
        console.print(line)
