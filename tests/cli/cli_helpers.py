"""Helpers shared by the CLI tests: run `pmrfusion` in this process, check a one-line error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import pmrfusion
from pmrfusion import cli

SRC = str(Path(pmrfusion.__file__).resolve().parents[1])


def subprocess_run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -W always -m pmrfusion ARGS` in a fresh process (this checkout's package first on the
    path; the caller's PYTHONWARNINGS and manifest opt-in dropped; `env` added)."""
    full = {**os.environ, "PYTHONPATH": SRC, **env}
    for name in ("PYTHONWARNINGS", "PMRFUSION_MANIFEST_ALLOW_OUTSIDE"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-W", "always", "-m", "pmrfusion", *args],
        capture_output=True, text=True, cwd=cwd, env=full, timeout=300,
    )  # fmt: skip


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
