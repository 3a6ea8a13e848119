"""`pmrfusion datasets`: the built-in datasets with sizes, modalities and dims."""

from __future__ import annotations

from rich.table import Table

from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import DataRoot
from pmrfusion.data.loaders import available_datasets


@app.command()
def datasets(data_root: DataRoot = None) -> None:
    """List the built-in datasets with sizes, modalities and dims."""
    table = Table("name", "samples", "classes", "modalities (dim)", "split", "description")
    for info, data in available_datasets(data_root):
        if isinstance(data, str):
            table.add_row(info.name, "-", "-", f"[dim]unavailable: {data}[/dim]", "-", info.description)
        else:
            dims = ", ".join(f"{m} {d}" for m, d in data.dims.items())
            split = "/".join(str(len(v)) for v in data.splits.values())
            table.add_row(
                info.name, str(data.num_samples), str(data.num_classes), dims, split, info.description
            )
    console.print(table)
