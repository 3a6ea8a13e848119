"""`pmrfusion` command line: one module per command, all registered on `cli.app.app`.

A new command is a new module here that decorates a function with `@app.command(...)` and is
listed in `COMMAND_MODULES` (command name -> module). Commands parse options and print; the work
happens in the library, imported inside the command function: `main` registers only the command
a command line names (all of them for `--help`), and no command module imports torch at import
time, so `pmrfusion --help` and `pmrfusion datasets` start fast.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

try:  # recent typer vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # older typer: the click package
    from click.exceptions import ClickException


class _Package(types.ModuleType):
    """Keeps `pmrfusion.cli.app` the typer application (with every command), not the submodule."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "app" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

from pmrfusion.cli.app import app as _app  # noqa: E402
from pmrfusion.cli.app import console, interrupt_note  # noqa: E402
from pmrfusion.errors import PMRFusionError  # noqa: E402

# command name -> the module that registers it (tests/cli/test_startup.py checks this against the app)
COMMAND_MODULES = {
    "datasets": "datasets",
    "methods": "methods",
    "train": "train",
    "eval": "evaluate",
    "predict": "predict",
    "bench": "bench",
    "suite": "suite",
    "retrieval": "retrieval",
    "report": "report",
    "analyze-pmr": "analyze_pmr",
    "analyze-dynamic": "analyze_dynamic",
    "analyze-encoders": "analyze_encoders",
    "speed-encoders": "analyze_encoders",
    "bench-dynamic": "pages",
    "bench-pmr-family": "pages",
    "speed": "pages",
    "robustness-summary": "pages",
    "select-on-validation": "pages",
    "rcml": "rcml",
    "run": "run",
    "verdicts": "run",
    "benchmarks": "run",
    "scaling": "scaling",
    "gpu-check": "scaling",
}
COMMANDS = tuple(dict.fromkeys(COMMAND_MODULES.values()))  # the command modules, in help order


def load_commands(names: Sequence[str] | None = None) -> None:
    """Register the commands `names` on the app (None: every command). A command module imports
    what its command needs (torch for most), so `pmrfusion datasets` loads only the catalog."""
    modules = COMMANDS if names is None else [COMMAND_MODULES[n] for n in names]
    for module in modules:
        importlib.import_module(f"{__name__}.{module}")


def requested_command(argv: Sequence[str]) -> str | None:
    """The command a command line names, if it is one (else None: help, or an unknown name)."""
    args = iter(argv)
    for a in args:
        if a == "--threads":
            next(args, None)
        elif not a.startswith("-"):
            return a if a in COMMAND_MODULES else None
    return None


def __getattr__(name: str) -> Any:
    if name == "app":  # the application with every command, for in-process use (tests, CliRunner)
        load_commands()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
            command = requested_command(sys.argv[1:])
            if command is not None or "--version" not in sys.argv[1:]:
                load_commands(None if command is None else [command])
            code = _app(standalone_mode=False)
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
