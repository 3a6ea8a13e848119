"""Option types and parsers shared by the commands (parse and report only; configs validate).

`--set key=value` items are parsed by `pmrfusion.methods.base.parse_overrides`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pmrfusion.errors import PMRFusionError

# `pmrfusion.train.devices.DEVICE_HELP`, repeated so that --help does not import torch
# (tests/cli/test_startup.py checks that the two agree)
DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps"

if TYPE_CHECKING:  # torch: loaded by the commands that train, not by `datasets` or `--help`
    from pmrfusion.train.trainer import TrainConfig

DataRoot = Annotated[
    Path | None,
    typer.Option(
        "--data-root", help="folder with cub/, pie/, ... (env PMRFUSION_DATA)", exists=True, file_okay=False
    ),
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="method option key=value (repeatable), e.g. n=8")
]
Device = Annotated[str, typer.Option(help=f"where training and evaluation run: {DEVICE_HELP}")]
LabelNoise = Annotated[
    float, typer.Option("--label-noise", help="fraction of training labels flipped (seeded), 0..1")
]
Precision = Annotated[
    str, typer.Option(help="training precision: 32, bf16 (bfloat16 autocast) or 16-mixed (float16 + scaler)")
]
ModalityDropout = Annotated[
    float,
    typer.Option(
        "--modality-dropout",
        help="training-time missing-modality augmentation: P(a modality of a sample is zeroed), 0..1",
    ),
]
Quiet = Annotated[bool, typer.Option(help="no progress bar")]
Executor = Annotated[
    str,
    typer.Option(help="where cells run: local (this machine's processes) or dask (a Dask cluster)"),
]
Jobs = Annotated[
    int, typer.Option(help="cells run in N worker processes (one torch thread each), or N local Dask workers")
]
Scheduler = Annotated[
    str | None,
    typer.Option(
        help="Dask scheduler address (tcp://host:8786) or scheduler file (.json); default: a local "
        "cluster of --jobs workers, one thread each"
    ),
]
OptimizerKernel = Annotated[
    str,
    typer.Option(
        "--optimizer-kernel",
        help="optimizer kernel: auto (fused where the device has it, else foreach), fused, foreach, "
        "single (the per-tensor loop; reproduces records made before kernels were selectable)",
    ),
]


def split_list(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']; commas inside [...] stay (method variants such as
    'sg-concat[n=8,b=0.25]'); an empty list (e.g. `--methods ""`) is an error."""
    items = [t.strip() for t in re.split(r",(?![^\[]*\])", text) if t.strip()]
    if not items:
        raise PMRFusionError(f"empty comma-separated list: {text!r}")
    return items


def train_config(
    epochs: int,
    lr: float,
    batch_size: int,
    quiet: bool,
    label_noise: float = 0.0,
    modality_dropout: float = 0.0,
    device: str = "auto",
    precision: str = "32",
    optimizer_kernel: str = "auto",
) -> TrainConfig:
    """TrainConfig checks its own fields (one error line for the first bad one)."""
    from pmrfusion.train.trainer import TrainConfig

    return TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        quiet=quiet,
        label_noise=label_noise,
        modality_dropout=modality_dropout,
        device=device,
        precision=precision,
        optimizer_kernel=optimizer_kernel,
    )


Epochs = Annotated[int, typer.Option(help="training epochs (the best validation epoch is kept)")]
LearningRate = Annotated[float, typer.Option("--lr", help="learning rate")]
BatchSize = Annotated[int, typer.Option(help="training batch size")]
Threads = Annotated[int, typer.Option(help="torch threads")]
