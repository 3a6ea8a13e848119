"""`pmrfusion` command line: one module per command, all registered on `cli.app.app`.

A new command is a new module here that decorates a function with `@app.command(...)` and is
listed in `COMMANDS`. Commands parse options and print; the work happens in the library.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings

import torch

from pmrfusion.cli.app import app, console, interrupt_note
from pmrfusion.errors import PMRFusionError

COMMANDS = (
    "datasets",
    "methods",
    "train",
    "evaluate",
    "bench",
    "suite",
    "retrieval",
    "report",
    "analyze_pmr",
    "analyze_dynamic",
    "pages",
    "rcml",
)
for _name in COMMANDS:
    importlib.import_module(f"{__name__}.{_name}")


class Interrupted(BaseException):
    """Ctrl-C, raised past click's own KeyboardInterrupt handling (which prints "Aborted!")."""


def _interrupt(signum, frame) -> None:
    if os.getpid() != _MAIN_PID:  # a forked DataLoader worker: the usual KeyboardInterrupt
        raise KeyboardInterrupt
    raise Interrupted()


def _replay(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


_MAIN_PID = os.getpid()


def main() -> None:
    """Run the CLI: a `PMRFusionError` is one `error: ...` line and exit 2; Ctrl-C is one
    `interrupted: ...` line saying what was kept and exit 130. Warnings are held back and shown
    after a run that ends well, so an `error:` line is always the first line on stderr."""
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    signal.signal(signal.SIGINT, _interrupt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            app()
        except PMRFusionError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except (Interrupted, KeyboardInterrupt):
            print(f"interrupted: {interrupt_note()}", file=sys.stderr)
            sys.exit(130)
        except SystemExit as e:
            if e.code in (0, None):
                _replay(caught)
            raise
    _replay(caught)


__all__ = ["Interrupted", "app", "console", "main"]
