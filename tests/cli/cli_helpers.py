"""Helpers shared by the CLI tests: run `pmrfusion` in this process, check a one-line error."""

from __future__ import annotations

import signal
import sys

import pytest

from pmrfusion import cli


def run_main(
    argv: list[str], capsys: pytest.CaptureFixture[str] | None = None, with_stdout: bool = False
) -> tuple[int, str]:
    """(exit code, stderr; with `with_stdout` stderr + stdout) of `pmrfusion ARGV` in this process
    (nothing captured without `capsys`). SIGINT's handler and sys.argv are restored."""
    old_argv, old_handler = sys.argv, signal.getsignal(signal.SIGINT)
    sys.argv = ["pmrfusion", *argv]
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old_argv
        signal.signal(signal.SIGINT, old_handler)
    if capsys is None:
        return code, ""
    captured = capsys.readouterr()
    return code, captured.err + (captured.out if with_stdout else "")


def assert_one_error(code: int, err: str, needle: str) -> None:
    """Exit 2, the first line an `error:` line holding `needle`, no traceback."""
    assert code == 2, err
    first = err.strip().splitlines()[0] if err.strip() else ""
    assert first.startswith("error:") and needle in first, err
    assert "Traceback" not in err, err
