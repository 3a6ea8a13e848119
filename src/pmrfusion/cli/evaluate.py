"""`pmrfusion eval`: evaluate a saved checkpoint under robustness protocols."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.bench.runner import evaluate
from pmrfusion.cli.app import app
from pmrfusion.cli.options import DataRoot, split_list
from pmrfusion.cli.summary import print_summary
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.tensors import prepare, to_split
from pmrfusion.eval.protocols import check_protocol
from pmrfusion.train.checkpoint import check_data_matches, load_checkpoint
from pmrfusion.train.trainer import check_seed


@app.command("eval")
def eval_cmd(
    load: Annotated[Path, typer.Option(help="checkpoint written by `train --save`")],
    dataset: Annotated[str | None, typer.Option(help="override the checkpoint's dataset")] = None,
    protocols: str = "clean,missing,gaussian",
    seed: int = 0,
    data_root: DataRoot = None,
) -> None:
    """Evaluate a checkpoint under robustness protocols on the test split."""
    protos = split_list(protocols)
    for p in protos:
        check_protocol(p)
    check_seed(seed)
    from pmrfusion.train.raw_checkpoint import is_raw_checkpoint

    if is_raw_checkpoint(load):
        _eval_raw(load, dataset, protos, seed, data_root)
        return
    model, meta, scaler = load_checkpoint(load)
    data = load_dataset(dataset or meta["dataset"], data_root)
    check_data_matches(meta, data.modalities, data.dims, data.num_classes)
    prepared = prepare(data, seed=seed)
    # scale with the checkpoint's statistics; train min/max (salt_pepper, conflict) come from
    # the training rows of this seed's split, scaled the same way
    prepared.train = to_split(data, prepared.train.index.numpy(), scaler)
    prepared.test = to_split(data, data.split("test"), scaler)
    recs = evaluate(model, prepared, protos, seed, {"dataset": data.name, "method": meta["method"]})
    print_summary(recs, len(data.modalities))


def _eval_raw(load: Path, dataset: str | None, protos: list[str], seed: int, data_root) -> None:
    """A raw-data checkpoint (encoders + method) on the test split of a raw dataset."""
    from pmrfusion.data.raw import RawMultimodalData
    from pmrfusion.errors import PMRFusionError
    from pmrfusion.eval.raw_protocols import check_raw_protocol
    from pmrfusion.train.end_to_end import RawPrepared, evaluate_raw
    from pmrfusion.train.raw_checkpoint import load_raw_checkpoint

    for p in protos:
        check_raw_protocol(p)
    import torch

    meta = torch.load(load, map_location="cpu", weights_only=True)
    data = load_dataset(dataset or str(meta.get("dataset", "")), data_root)
    if not isinstance(data, RawMultimodalData):
        raise PMRFusionError(f"{load} holds encoders for raw data; '{data.name}' is a feature dataset")
    model, meta, data, stats = load_raw_checkpoint(load, data)
    test = data.rows("test")
    prepared = RawPrepared(data, test, None, test, stats)
    recs = evaluate_raw(model, prepared, protos, seed, {"dataset": data.name, "method": meta["method"]})
    print_summary(recs, len(data.modalities))
