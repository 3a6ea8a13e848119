"""`pmrfusion` command line: one module per command, all registered on `cli.app.app`.

A new command is a new module here that decorates a function with `@app.command(...)` and is
listed in `COMMANDS`. Commands parse options and print; the work happens in the library.
"""

from __future__ import annotations

import importlib
import sys

import torch

from pmrfusion.cli.app import app, console
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


def main() -> None:
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    try:
        app()
    except PMRFusionError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


__all__ = ["app", "console", "main"]
