"""`pmrfusion retrieval`: cross-modal retrieval (img<->txt) with contrastive methods vs CCA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import BatchSize, DataRoot, Epochs, LabelNoise, LearningRate, split_list
from pmrfusion.paths import check_output_dir


@app.command("retrieval")
def retrieval(
    dataset: Annotated[str, typer.Option(help="two-modality dataset")] = "wikipedia",
    methods: Annotated[
        str, typer.Option(help="comma-separated contrastive methods")
    ] = "cmmp,rg-cmmp,sg-cmmp",
    seeds: Annotated[int, typer.Option(help="number of seeds (0..seeds-1)")] = 5,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/retrieval"),
    objective: Annotated[
        str, typer.Option(help="contrastive | joint (CE also trains embeddings)")
    ] = "contrastive",
    epochs: Epochs = 100,
    lr: LearningRate = 1e-3,
    batch_size: BatchSize = 128,
    cca: Annotated[bool, typer.Option(help="add the scikit-learn CCA baseline")] = True,
    noise: Annotated[
        str, typer.Option(help="test-time noise on both modalities: '' or a list of gaussian, salt_pepper")
    ] = "",
    label_noise: LabelNoise = 0.0,
    data_root: DataRoot = None,
) -> None:
    """Train with the contrastive objective, retrieve on test embeddings; CCA side by side."""
    from pmrfusion.bench.retrieval import retrieval_experiment
    from pmrfusion.train.distributed import refuse_under_torchrun

    refuse_under_torchrun("retrieval")
    check_output_dir(out, "--out")
    retrieval_experiment(
        dataset, split_list(methods), seeds, out, objective, epochs, lr, batch_size, cca, data_root,
        log=console.print, noise=split_list(noise) if noise else (), label_noise=label_noise,
    )  # fmt: skip
