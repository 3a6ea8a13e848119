"""The typer application and console every command module registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
console = Console()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"pmrfusion {version('pmrfusion')}")
        raise typer.Exit()


def _set_threads(value: int | None) -> int | None:
    if value is not None:
        if value < 1:
            raise typer.BadParameter(f"must be >= 1, got {value}")
        import torch

        torch.set_num_threads(value)
    return value


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
    threads: int | None = typer.Option(
        None, "--threads", callback=_set_threads,
        help="torch threads of this process (default: torch's, one per core); suite workers use one each",
    ),  # fmt: skip
) -> None:
    """pmrfusion: multimodal fusion that survives missing and noisy modalities."""

# What Ctrl-C leaves behind, said in the one `interrupted:` line; a command whose interrupted
# run keeps partial results (a suite's finished cells) says so with `on_interrupt`.
_KEPT = ["nothing was half-written (every file is written whole, then renamed into place)"]


def on_interrupt(note: str) -> None:
    _KEPT[0] = note


def interrupt_note() -> str:
    return _KEPT[0]
