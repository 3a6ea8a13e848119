"""Option types and parsers shared by the commands (parse and report only; configs validate)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated, Any

import typer

from pmrfusion.errors import PMRFusionError
from pmrfusion.train.trainer import TrainConfig

DataRoot = Annotated[
    Path | None, typer.Option("--data-root", help="folder with cub/, pie/, ... (env PMRFUSION_DATA)")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="method option key=value (repeatable), e.g. n=8")
]
LabelNoise = Annotated[
    float, typer.Option("--label-noise", help="fraction of training labels flipped (seeded), 0..1")
]
ModalityDropout = Annotated[
    float,
    typer.Option(
        "--modality-dropout",
        help="training-time missing-modality augmentation: P(a modality of a sample is zeroed), 0..1",
    ),
]
Quiet = Annotated[bool, typer.Option(help="no progress bar")]


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """`--set key=value` items as a dict; values parsed as Python literals where they are."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise PMRFusionError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out


def split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def train_config(
    epochs: int,
    lr: float,
    batch_size: int,
    quiet: bool,
    label_noise: float = 0.0,
    modality_dropout: float = 0.0,
) -> TrainConfig:
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise PMRFusionError("epochs and batch size must be >= 1 and lr > 0")
    if not 0.0 <= label_noise <= 1.0:
        raise PMRFusionError(f"--label-noise must be in [0, 1], got {label_noise}")
    if not 0.0 <= modality_dropout < 1.0:
        raise PMRFusionError(f"--modality-dropout must be in [0, 1), got {modality_dropout}")
    return TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        quiet=quiet,
        label_noise=label_noise,
        modality_dropout=modality_dropout,
    )
