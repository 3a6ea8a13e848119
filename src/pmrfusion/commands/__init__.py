"""Extra CLI commands. Every module here defines `register(app: typer.Typer) -> None`;
`pmrfusion.cli` calls it for each module, so a new command is a new file."""

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer) -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}").register(app)
