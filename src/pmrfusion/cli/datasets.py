"""`pmrfusion datasets`: the built-in datasets with sizes, modalities and dims (from their catalog)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import DataRoot
from pmrfusion.data.loaders import DATASETS, available_datasets, dataset_availability


@app.command()
def datasets(
    data_root: DataRoot = None,
    load: Annotated[
        bool, typer.Option(help="load every dataset and list what it holds (slow) instead of its catalog")
    ] = False,
) -> None:
    """List the built-in datasets with sizes, modalities and dims (nothing is loaded unless --load)."""
    table = Table("name", "kind", "samples", "classes", "modalities (dim)", "split", "description")
    if load:
        for info, data in available_datasets(data_root):
            if isinstance(data, str):
                why = f"[dim]unavailable: {data}[/dim]"
                table.add_row(info.name, "-", "-", "-", why, "-", info.description)
                continue
            kind = "raw" if hasattr(data, "kinds") else "features"
            dims = ", ".join(f"{m} {d}" for m, d in data.dims.items())
            split = "/".join(str(len(v)) for v in data.splits.values())
            table.add_row(info.name, kind, str(data.num_samples), _classes(data.num_classes), dims, split,
                          info.description)  # fmt: skip
        console.print(table)
        return
    for info in DATASETS.values():
        c = info.catalog
        why = dataset_availability(info, data_root)
        note = f"{info.description} [dim](unavailable: {why})[/dim]" if why else info.description
        if c is None:
            table.add_row(info.name, "-", "-", "-", "-", "-", note)
            continue
        dims = ", ".join(f"{m} {d}" for m, d in c.modalities)
        split = "/".join(str(v) for v in c.split)
        table.add_row(info.name, c.kind, str(c.samples), _classes(c.classes), dims, split, note)
    console.print(table)


def _classes(k: int) -> str:
    return "regression" if k == 1 else str(k)
