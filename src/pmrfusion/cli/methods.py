"""`pmrfusion methods`: the registered methods and their options."""

from __future__ import annotations

import dataclasses

from rich.table import Table

from pmrfusion.cli.app import app, console


@app.command()
def methods() -> None:
    """List the registered methods and their options."""
    from pmrfusion.methods import available_methods
    from pmrfusion.methods.base import GENERIC_OPTIONS, option_names

    table = Table("method", "description", "options (defaults)")
    for name, spec in sorted(available_methods().items()):
        used = set(option_names(spec.name))
        fields = [f for f in dataclasses.fields(spec.config_cls) if f.name in used]
        opts = ", ".join(f"{f.name}={f.default!r}" for f in fields)
        table.add_row(name, spec.description, opts)
    console.print(table)
    generic = ", ".join(f"{k}={v!r}" for k, v in GENERIC_OPTIONS.items())
    console.print(f"Every method also takes: {generic} (equal_dims: wider inputs mapped to the narrowest).")
