"""Fault test of the suite: kill -9 at random moments, truncate a finished cell, resume.

The final results must equal an uninterrupted run's, byte for byte.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pmrfusion

SRC = str(Path(pmrfusion.__file__).resolve().parents[1])
ARGS = ["suite", "paper", "--datasets", "handwritten", "--methods", "concat,late",
        "--seeds", "2", "--epochs", "2", "--protocols", "clean,missing", "--quiet"]  # fmt: skip


def _start(out: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, "-m", "pmrfusion", *ARGS, "--out", str(out)],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(out: Path, cwd: Path) -> None:
    proc = _start(out, cwd)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # timed out: never leave a process behind
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, err


def test_kill_and_truncate_then_resume_matches_uninterrupted(tmp_path):
    reference = tmp_path / "reference"
    _finish(reference, tmp_path)
    faulty = tmp_path / "faulty"
    rng = random.Random(12)
    for _ in range(3):
        proc = _start(faulty, tmp_path)
        time.sleep(rng.uniform(2.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
    _finish(faulty, tmp_path)
    # kill -9 alone already holds with the current store
    assert (faulty / "results.json").read_bytes() == (reference / "results.json").read_bytes()
    cells = sorted((faulty / "cells").glob("*.json"))
    assert cells
    data = cells[0].read_bytes()
    cells[0].write_bytes(data[: len(data) // 2])
    _finish(faulty, tmp_path)  # the truncated cell fails its checksum and is recomputed
    assert (faulty / "results.json").read_bytes() == (reference / "results.json").read_bytes()
