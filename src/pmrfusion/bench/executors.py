"""Where cells run: in this process, in a local process pool, or on a Dask `distributed` cluster.

One interface, `CellExecutor.map_unordered(fn, items, *args)`: call `fn(item, *args)` for every
item and yield `(item, result)` as each finishes. Only the caller stores results (the suite's
checksummed cell files, an experiment's records), so resume, skip-finished and byte-identical
records do not depend on the executor. Use an executor as a context manager: leaving the block
by an exception (a callback's, Ctrl-C, SIGTERM) stops its workers at once; the cells stored so far
are whole.

- `LocalExecutor(jobs)`: `jobs=1` (or one item) runs in the calling process; otherwise `jobs`
  spawned worker processes, one torch thread each, that die with the parent (Linux:
  PR_SET_PDEATHSIG; everywhere: a thread polling the parent's pid) and ignore Ctrl-C (the parent
  stops them). A worker that dies (killed, out of memory) ends the run with `WorkerLost`.
- `DaskExecutor(scheduler, workers)`: each item is a task on a `distributed` scheduler at
  `scheduler` (an address such as tcp://host:8786, or a scheduler file written by
  `dask scheduler --scheduler-file F`), or on a `LocalCluster(n_workers=workers,
  threads_per_worker=1, processes=True)` when no address is given. A worker lost mid-task is
  the scheduler's to handle: the task runs again on another worker, and its result reaches the
  caller once; a task that raises is retried `retries` times. Workers need the package and the
  data root, nothing else: items and `args` are names and settings, never loaded arrays (each
  worker process loads a dataset once, into its own cache). Each task runs with one torch thread.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import torch

from pmrfusion.errors import PMRFusionError

T = TypeVar("T")
R = TypeVar("R")
EXECUTORS = ("local", "dask")
PARENT_POLL_S = 1.0  # how often a local worker checks that its parent is alive
DASK_RETRIES = 2  # a task that raises runs at most this many more times
DASK_CONNECT_TIMEOUT_S = 30


class WorkerLost(PMRFusionError):
    """A local worker process died (killed, out of memory?) while `item` ran."""

    def __init__(self, item: object) -> None:
        super().__init__(f"a worker process died (killed, or out of memory?) while {item} ran")
        self.item = item


class CellExecutor(Protocol):
    """Runs `fn(item, *args)` for each item somewhere; yields `(item, result)` as each finishes."""

    name: str

    def map_unordered(
        self, fn: Callable[..., R], items: Sequence[T], *args: Any
    ) -> Iterator[tuple[T, R]]: ...

    def __enter__(self) -> CellExecutor: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def one_thread(fn: Callable[..., R], item: Any, *args: Any) -> R:
    """`fn(item, *args)` with one torch thread (what every worker runs)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return fn(item, *args)


# ----------------------------------------------------------------------------- local processes

PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15  # linux/prctl.h
WORKER_NAME = b"pmrfusion-cell"  # a worker's name in ps / /proc/PID/comm once it is set up (Linux)


def die_with_parent(parent: int, poll_s: float = PARENT_POLL_S) -> None:
    """End this process as soon as process `parent` (its parent) is gone: the kernel sends SIGKILL
    (Linux, PR_SET_PDEATHSIG), and a daemon thread polls os.getppid() (everywhere). On Linux the
    process is then named WORKER_NAME."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            libc.prctl(PR_SET_NAME, ctypes.c_char_p(WORKER_NAME), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="pmrfusion-parent-watch", daemon=True).start()


def _init_worker(parent: int) -> None:
    torch.set_num_threads(1)
    die_with_parent(parent)


@contextlib.contextmanager
def workers_ignore_ctrl_c() -> Iterator[None]:
    """Worker processes started inside have SIGINT blocked from their first instruction (a
    signal mask survives fork and exec): Ctrl-C reaches the whole process group, and the parent
    alone stops the workers and says what was kept. A Ctrl-C meanwhile reaches the parent when
    the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop every worker of `pool` now (a cell in flight is lost; the stored ones are whole)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # shutdown drops them
    # The call queue's feeder thread is joined at interpreter exit; with its readers stopped it can
    # wait forever (a `run --jobs 2` once hung after Ctrl-C), so the exit must not join it.
    call_queue = getattr(pool, "_call_queue", None)
    if call_queue is not None:
        with contextlib.suppress(Exception):
            call_queue.cancel_join_thread()
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        with contextlib.suppress(Exception):
            proc.terminate()
    deadline = time.monotonic() + 5.0
    for proc in workers:
        with contextlib.suppress(Exception):
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()


class LocalExecutor:
    """This process (`jobs=1`), or `jobs` spawned worker processes on this machine."""

    name = "local"

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise PMRFusionError("--jobs must be >= 1")
        self.jobs = jobs
        self._pool: cf.ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self.jobs

    def map_unordered(self, fn: Callable[..., R], items: Sequence[T], *args: Any) -> Iterator[tuple[T, R]]:
        if self.jobs == 1 or len(items) <= 1:
            for item in items:
                yield item, fn(item, *args)
            return
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.jobs, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
            )
        with workers_ignore_ctrl_c():  # the pool spawns its workers on submit
            futures = {self._pool.submit(fn, item, *args): item for item in items}
        for fut in cf.as_completed(futures):
            item = futures[fut]
            try:
                result = fut.result()
            except cf.process.BrokenProcessPool:
                raise WorkerLost(item) from None
            yield item, result

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kind is None:
            pool.shutdown(wait=True)
        else:
            _stop(pool)


# ----------------------------------------------------------------------------- Dask distributed


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise PMRFusionError(
            "--executor dask needs Dask distributed: pip install 'pmrfusion[dask]'"
        ) from None
    return distributed


class DaskExecutor:
    """Each item a task on a Dask `distributed` scheduler (a LocalCluster when none is given)."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int = 1, retries: int = DASK_RETRIES) -> None:
        if workers < 1:
            raise PMRFusionError("--jobs (Dask workers of a local cluster) must be >= 1")
        self.scheduler = scheduler
        self.retries = retries
        self._workers = workers
        self._cluster: Any = None
        self._client: Any = None
        self._futures: list[Any] = []

    @property
    def workers(self) -> int:
        """The workers now connected (the local cluster's, or the scheduler's)."""
        if self._client is None:
            return self._workers
        return len(self._client.scheduler_info().get("workers", {})) or self._workers

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        distributed = _distributed()
        if self.scheduler is None:
            with workers_ignore_ctrl_c():
                self._cluster = distributed.LocalCluster(
                    n_workers=self._workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=40,
                )  # fmt: skip
            self._client = distributed.Client(self._cluster)
            return self._client
        where = self.scheduler
        kwargs: dict[str, Any] = {"timeout": f"{DASK_CONNECT_TIMEOUT_S}s"}
        if where.endswith(".json"):
            if not Path(where).is_file():
                raise PMRFusionError(f"--scheduler {where}: no such scheduler file")
            kwargs["scheduler_file"] = where
        else:
            kwargs["address"] = where
        try:
            self._client = distributed.Client(**kwargs)
        except (OSError, TimeoutError, ValueError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PMRFusionError(f"--scheduler {where}: cannot reach the Dask scheduler ({msg})") from None
        return self._client

    def map_unordered(self, fn: Callable[..., R], items: Sequence[T], *args: Any) -> Iterator[tuple[T, R]]:
        if not items:
            return
        distributed = _distributed()
        client = self._connect()
        futures = {
            client.submit(one_thread, fn, item, *args, pure=False, retries=self.retries): item
            for item in items
        }
        self._futures = list(futures)
        for fut in distributed.as_completed(futures):
            item = futures[fut]
            try:
                result = fut.result()
            except distributed.KilledWorker:
                raise PMRFusionError(
                    f"{item} killed every Dask worker that ran it (out of memory?); the stored cells are kept"
                ) from None
            fut.release()
            yield item, result

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            if kind is not None and self._futures:
                with contextlib.suppress(Exception):
                    client.cancel(self._futures)
            self._futures = []
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def cell_executor(name: str = "local", jobs: int = 1, scheduler: str | None = None) -> CellExecutor:
    """The executor `name` ("local" or "dask"); `jobs` is the local pool's processes or the
    workers of a Dask LocalCluster (ignored with a `scheduler` address)."""
    if name not in EXECUTORS:
        raise PMRFusionError(f"--executor {name!r}: use one of {', '.join(EXECUTORS)}")
    if jobs < 1:
        raise PMRFusionError("--jobs must be >= 1")
    if name == "local":
        if scheduler is not None:
            raise PMRFusionError("--scheduler needs --executor dask")
        return LocalExecutor(jobs)
    _distributed()
    return DaskExecutor(scheduler, jobs)


__all__ = [
    "EXECUTORS",
    "WORKER_NAME",
    "CellExecutor",
    "DaskExecutor",
    "LocalExecutor",
    "WorkerLost",
    "cell_executor",
    "die_with_parent",
    "one_thread",
    "workers_ignore_ctrl_c",
]
