"""The typer application and console every command module registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
console = Console()
