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

try:  # recent typer vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # older typer: the click package
    from click.exceptions import ClickException

from pmrfusion.cli.app import app, console, interrupt_note
from pmrfusion.errors import PMRFusionError

COMMANDS = (
    "datasets",
    "methods",
    "train",
    "evaluate",
    "predict",
    "bench",
    "suite",
    "retrieval",
    "report",
    "analyze_pmr",
    "analyze_dynamic",
    "analyze_encoders",
    "pages",
    "rcml",
    "run",
    "scaling",
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
    signal.signal(signal.SIGINT, _interrupt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            code = app(standalone_mode=False)
        except PMRFusionError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except ClickException as e:  # bad usage (unknown option, wrong type): also one line
            message = e.format_message()
            if message:  # `pmrfusion` alone printed its help and raises with no message
                ctx = getattr(e, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                print(f"error: {message}{hint}", file=sys.stderr)
            sys.exit(e.exit_code)
        except (Interrupted, KeyboardInterrupt):
            print(f"interrupted: {interrupt_note()}", file=sys.stderr)
            sys.exit(130)
        except SystemExit as e:
            if e.code in (0, None):
                _replay(caught)
            raise
    _replay(caught)
    if isinstance(code, int) and code:  # typer.Exit(code) from a command
        sys.exit(code)


__all__ = ["Interrupted", "app", "console", "main"]
