"""`pmrfusion predict`: a checkpoint's predictions for every sample of a dataset, as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import DataRoot, Device


@app.command("predict")
def predict_cmd(
    load: Annotated[Path, typer.Option(help="checkpoint written by `train --save`")],
    out: Annotated[Path, typer.Option(help="CSV file to write (one row per sample)")],
    dataset: Annotated[
        str | None, typer.Option(help="dataset to predict (labels not needed; default: the checkpoint's)")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out file")] = False,
    data_root: DataRoot = None,
    device: Device = "auto",
) -> None:
    """Predict every sample of a dataset: id, prediction, class probabilities, modalities present,
    and the method's uncertainty / fusion weights where it has them."""
    from pmrfusion.train.devices import resolve_device
    from pmrfusion.train.prediction import check_prediction_output, predict_checkpoint, write_predictions

    check_prediction_output(out, overwrite)
    preds = predict_checkpoint(load, dataset, data_root, resolve_device(device))
    write_predictions(preds, out, overwrite)
    console.print(f"{len(preds)} predictions written to {out}")
