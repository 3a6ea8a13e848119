"""The suite on a real Dask cluster: a scheduler and two worker processes on localhost, started as
subprocesses; records identical to a local run, also when a worker is killed mid-suite."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pmrfusion.bench.executors import DaskExecutor
from pmrfusion.bench.suite import SuiteSpec, run_suite
from pmrfusion.train.trainer import TrainConfig

distributed = pytest.importorskip("distributed")

SRC = str(Path(__file__).resolve().parents[2] / "src")
START_TIMEOUT_S = 60


def _spec() -> SuiteSpec:
    return SuiteSpec(datasets=["handwritten"], methods=["concat", "late"], seeds=[0, 1],
                     protocols=["clean"], train=TrainConfig(epochs=2, batch_size=128))  # fmt: skip


def _env() -> dict[str, str]:
    path = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _wait(condition, what: str, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not condition():
        dead = [p.args for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{dead[0]} exited before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {START_TIMEOUT_S}s")
        time.sleep(0.2)


@pytest.fixture
def cluster(tmp_path):
    """(scheduler file, {worker name: its process}): `dask scheduler` + 2 `dask worker --no-nanny`."""
    file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(file)],
            env=_env(), stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        _wait(file.exists, "scheduler file", procs)
        workers = {}
        for name in ("w0", "w1"):
            proc = subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(file),
                 "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name, "--host", "127.0.0.1"],
                env=_env(), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            procs.append(proc)
            workers[name] = proc
        with distributed.Client(scheduler_file=str(file), timeout="30s") as client:
            _wait(lambda: len(client.scheduler_info()["workers"]) == 2, "2 workers", procs)
        yield file, workers
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait(timeout=10)
        log.close()


def _results(folder: Path) -> bytes:
    return (folder / "results.json").read_bytes()


def test_dask_suite_matches_local_even_when_a_worker_is_killed(tmp_path, cluster):
    file, workers = cluster
    spec = _spec()
    local = run_suite(spec, tmp_path / "local", jobs=1)
    assert local.ran == 4 and not local.notes

    with DaskExecutor(str(file)) as ex:
        on_dask = run_suite(spec, tmp_path / "dask", executor=ex)
    assert on_dask.ran == 4
    assert _results(tmp_path / "dask") == _results(tmp_path / "local")

    # kill the busy worker once the first cell has arrived: its cell runs again on the other one
    stored: list[str] = []
    killed: list[str] = []

    def kill_one(cell, payload, done, total):
        stored.append(cell.filename)
        if not killed:
            with distributed.Client(scheduler_file=str(file), timeout="30s") as client:
                info = client.scheduler_info()["workers"]
                busy = {a for a, keys in client.processing().items() if keys}
                name = next((w["name"] for a, w in info.items() if a in busy), "w0")
            workers[name].send_signal(signal.SIGKILL)
            killed.append(name)

    with DaskExecutor(str(file)) as ex:
        after_kill = run_suite(spec, tmp_path / "killed", executor=ex, on_cell=kill_one)
    assert killed and after_kill.ran == 4
    assert sorted(stored) == sorted(set(stored)) and len(stored) == 4  # each cell stored once
    assert len(list((tmp_path / "killed" / "cells").glob("*.json"))) == 4
    assert _results(tmp_path / "killed") == _results(tmp_path / "local")
    assert json.loads(_results(tmp_path / "killed"))  # not empty


def test_unreachable_scheduler_is_one_line(tmp_path):
    from pmrfusion.errors import PMRFusionError

    with pytest.raises(PMRFusionError, match="no such scheduler file"), DaskExecutor(
        str(tmp_path / "none.json")
    ) as ex:
        list(ex.map_unordered(str, [1]))
