"""Fault tests of the suite: kill -9 at random moments, truncate a finished cell, resume (the final
results must equal an uninterrupted run's, byte for byte); kill -9 or SIGTERM a `--jobs 2` parent
(its workers must die with it and release its stdout).
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pmrfusion
from pmrfusion.bench.suite import WORKER_NAME

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
    assert not list(faulty.rglob("*.tmp"))  # a kill inside a write leaves none behind a rerun


# ----------------------------------------------------------------------------- workers die with the parent

JOBS_ARGS = ["suite", "paper", "--datasets", "handwritten", "--methods", "concat", "--seeds", "4",
             "--epochs", "100", "--protocols", "clean", "--jobs", "2", "--quiet"]  # fmt: skip


def _children(pid: int) -> dict[int, str]:
    """{pid: name (/proc/PID/comm)} of the live processes whose parent is `pid` (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = name
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"  # a zombie has exited


def _until(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _read_to_eof(fd: int, timeout: float) -> bool:
    """Read `fd` until end of file (every writer gone); False if that takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready and not os.read(fd, 65536):
            return True
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_suite_workers_die_with_their_parent(tmp_path, sig):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmrfusion", *JOBS_ARGS, "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        def workers() -> dict[int, str]:  # set up: named by the suite's worker initializer
            return {p: c for p, c in _children(proc.pid).items() if c == WORKER_NAME.decode()}

        started = _until(lambda: len(workers()) == 2 or proc.poll() is not None, timeout=180)
        assert started, "no suite workers started"
        assert proc.poll() is None, proc.communicate(timeout=30)[1].decode()[-2000:]  # it ended early
        spawned = set(_children(proc.pid))  # the workers and multiprocessing's resource tracker
        proc.send_signal(sig)
        assert _until(lambda: not any(_alive(p) for p in spawned), timeout=10), {
            p: c for p, c in _children(proc.pid).items()
        }
        assert _read_to_eof(proc.stdout.fileno(), timeout=5)  # `suite ... | tee log` returns
        proc.wait(timeout=10)
        err = proc.stderr.read().decode()
        if sig == signal.SIGTERM:
            assert proc.returncode == 143, err
            assert err.startswith("terminated: every finished cell is kept"), err
            assert "Traceback" not in err, err
        else:
            assert proc.returncode == -signal.SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # never leave a process behind
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
