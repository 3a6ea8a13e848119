"""`pmrfusion analyze-dynamic` as a user runs it: subprocess, files on disk, exit codes."""

import os
import subprocess
import sys

import pytest


def run(*args):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pmrfusion", "analyze-dynamic", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize("kind", ["weights", "coherence"])
def test_analyze_dynamic_writes_table_and_png(tmp_path, kind):
    out = tmp_path / kind
    r = run(kind, "--dataset", "handwritten", "--seeds", "1", "--epochs", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    md = out / f"{kind}_handwritten.md"
    png = out / f"{kind}_handwritten.png"
    assert md.is_file() and png.is_file() and (out / f"{kind}_handwritten.json").is_file()
    assert "|---|" in md.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


@pytest.mark.parametrize(
    "args, message",
    [
        (["shapley", "--dataset", "handwritten"], "unknown analysis 'shapley'"),
        (["weights", "--dataset", "no-such-data"], "unknown dataset 'no-such-data'"),
        (["coherence", "--dataset", "handwritten", "--method", "qmf"], "unknown method 'qmf'"),
        (["weights", "--dataset", "handwritten", "--seeds", "0"], "--seeds"),
    ],
)
def test_analyze_dynamic_errors_are_one_line(tmp_path, args, message):
    r = run(*args, "--out", str(tmp_path / "x"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
