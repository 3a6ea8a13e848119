"""`pmrfusion eval`: evaluate a saved checkpoint under robustness protocols."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import DataRoot, Device, split_list
from pmrfusion.cli.summary import print_summary


@app.command("eval")
def eval_cmd(
    load: Annotated[Path, typer.Option(help="checkpoint written by `train --save`")],
    dataset: Annotated[str | None, typer.Option(help="override the checkpoint's dataset")] = None,
    protocols: Annotated[str, typer.Option(help="comma-separated protocols")] = "clean,missing,gaussian",
    seed: Annotated[int, typer.Option(help="seed of the validation split and of the noise protocols")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="write the records here (.json: a list as bench's results.json; .csv)")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out file")] = False,
    data_root: DataRoot = None,
    device: Device = "auto",
) -> None:
    """Evaluate a checkpoint under robustness protocols on the test split."""
    from pmrfusion.bench.records import check_records_file, write_records_file
    from pmrfusion.bench.runner import evaluate
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.eval.protocols import check_protocol
    from pmrfusion.train.checkpoint import is_raw_checkpoint, load_for_evaluation
    from pmrfusion.train.devices import resolve_device
    from pmrfusion.train.trainer import check_seed

    if out is not None:
        check_records_file(out, overwrite)
    protos = split_list(protocols)
    for p in protos:
        check_protocol(p)
    check_seed(seed)
    where = resolve_device(device)
    if is_raw_checkpoint(load):
        for p in protos:
            check_protocol(p, raw=True)
    model, meta, prepared = load_for_evaluation(
        load, lambda name: load_dataset(dataset or name, data_root), seed
    )
    model.to(where)
    recs = evaluate(model, prepared, protos, seed, {"dataset": prepared.name, "method": meta["method"]})
    print_summary(recs, len(prepared.modalities))
    if out is not None:
        write_records_file(out, recs)
        console.print(f"{len(recs)} records written to {out}")
