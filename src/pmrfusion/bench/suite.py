"""The one-command benchmark suite: datasets x methods x seeds, every protocol, resumable.

Layout of the output folder DIR:
- DIR/suite.json: the settings that every cell must share (protocols, training config, method
  options, validation fraction). A later run with different settings is refused.
- DIR/cells/<dataset>__<method>__seed<k>.json: one file per finished cell, written
  atomically with a checksum; status "ok" with its records, or "skipped" with a note (e.g. a
  method that cannot run on that dataset). A cell whose file is valid is never recomputed;
  a truncated or bad-checksum file is recomputed; delete the file to recompute it.
The file layout and its durability live in `bench.records`; the settings check and claim of
suite.json happen under an fcntl lock on DIR/.suite.lock.
- DIR/results.json (.csv, .md): every finished cell's records merged in a fixed order
  (dataset, method, seed), rewritten atomically after the run.

Cells run in the calling process (`jobs=1`) or in `jobs` worker processes (spawned, one
torch thread each). Every cell runs with one torch thread in either case, so its records do
not depend on `jobs`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pmrfusion.bench import records as store
from pmrfusion.bench.runner import evaluate, fit_method
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset, require_feature_vectors
from pmrfusion.data.tensors import prepare
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import available_protocols, check_protocol
from pmrfusion.methods import available_methods, method_config
from pmrfusion.train.trainer import TrainConfig, seed_range

SUITE_FORMAT = "pmrfusion-suite-1"
# Named suites: the classification datasets of shared/data, every method, every protocol.
SUITES: dict[str, dict[str, Any]] = {
    "paper": {"datasets": ("handwritten", "cub", "pie", "wikipedia"), "seeds": 5},
}



def default_protocols() -> list[str]:
    """Every registered protocol but `rcml` (RCML's protocol has its own splits: `pmrfusion rcml`)."""
    return [p for p in available_protocols() if p != "rcml"]

@dataclass(frozen=True)
class Cell:
    dataset: str
    method: str
    seed: int

    @property
    def filename(self) -> str:
        return store.cell_filename(self.dataset, self.method, self.seed)

    def __str__(self) -> str:
        return f"{self.dataset}/{self.method}/seed {self.seed}"


@dataclass
class SuiteSpec:
    datasets: Sequence[str]
    methods: Sequence[str]
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    protocols: Sequence[str] = field(default_factory=lambda: default_protocols())
    method_overrides: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    val_fraction: float = 0.15
    data_root: str | None = None

    def cells(self) -> list[Cell]:
        return [Cell(d, m, s) for d in self.datasets for m in self.methods for s in self.seeds]

    def settings(self) -> dict[str, Any]:
        """What every cell of one output folder must share (not the set of cells)."""
        tc = dataclasses.asdict(self.train)
        tc.pop("quiet", None)
        tc.pop("seed", None)
        tc["group_optimizers"] = repr(self.train.group_optimizers)
        return {
            "format": SUITE_FORMAT,
            "protocols": list(self.protocols),
            "train": tc,
            "method_overrides": {k: repr(v) for k, v in sorted(self.method_overrides.items())},
            "val_fraction": self.val_fraction,
        }


@dataclass
class SuiteResult:
    records: list[dict]
    ran: int  # cells computed in this call
    reused: int  # cells found finished from an earlier call
    notes: list[str]


CellCallback = Callable[[Cell, dict, int, int], None]  # (cell, payload, done, total)


def suite_spec(
    suite: str,
    datasets: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    seeds: int | None = None,
    **kwargs: Any,
) -> SuiteSpec:
    """A named suite, optionally narrowed to some datasets and methods."""
    if suite not in SUITES:
        raise PMRFusionError(f"unknown suite '{suite}': use one of {', '.join(SUITES)}")
    base = SUITES[suite]
    n_seeds = base["seeds"] if seeds is None else seeds
    if n_seeds < 1:
        raise PMRFusionError("a suite needs at least 1 seed")
    seed_list = seed_range(n_seeds)
    return SuiteSpec(
        datasets=list(datasets or base["datasets"]),
        methods=list(methods or sorted(available_methods())),
        seeds=seed_list,
        **kwargs,
    )


def available(datasets: Sequence[str], data_root: str | None) -> tuple[list[str], list[str]]:
    """(the datasets that load, notes on those that do not)."""
    ok, notes = [], []
    for name in datasets:
        try:
            data = _dataset(name, data_root)
        except PMRFusionError as e:
            notes.append(f"dataset {name} unavailable: {e}")
            continue
        require_feature_vectors(data, name, "suite")
        ok.append(name)
    return ok, notes


# ----------------------------------------------------------------------------- one cell

_DATA_CACHE: dict[tuple[str, str | None], MultimodalData] = {}


def _dataset(name: str, data_root: str | None) -> MultimodalData:
    key = (name, data_root)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_dataset(name, data_root)
    return _DATA_CACHE[key]


def run_cell(cell: Cell, spec: SuiteSpec) -> dict:
    """Train and evaluate one cell with one torch thread; never raises for a method failure."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    base = {"dataset": cell.dataset, "method": cell.method, "seed": cell.seed}
    try:
        data = _dataset(cell.dataset, spec.data_root)
        prepared = prepare(data, spec.val_fraction, cell.seed)
        model, result = fit_method(cell.method, prepared, cell.seed, spec.method_overrides, spec.train)
        records = evaluate(
            model, prepared, spec.protocols, cell.seed, {"dataset": data.name, "method": cell.method}
        )
        return {
            **base,
            "status": "ok",
            "records": records,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    except Exception as e:  # a method that cannot run here is skipped, not fatal
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        where = "" if isinstance(e, PMRFusionError) else f" at {_last_frame(e)}"
        return {
            **base,
            "status": "skipped",
            "note": f"{type(e).__name__}: {msg}{where}",
            "seconds": round(time.perf_counter() - t0, 3),
        }
    finally:
        torch.set_num_threads(threads)


def _last_frame(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    return f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"


def _init_worker() -> None:
    torch.set_num_threads(1)


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
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


# ----------------------------------------------------------------------------- the folder


def cell_path(out: Path, cell: Cell) -> Path:
    return store.cell_path(out, cell.filename)


def read_cells(out: Path) -> list[dict]:
    """Every finished cell's payload, ordered by (dataset, method, seed)."""
    return store.read_cells(out)


def merge(out: Path, header: str = "") -> tuple[list[dict], list[str]]:
    """Write DIR/results.json (.csv, .md) from the finished cells; returns (records, notes)."""
    records: list[dict] = []
    notes: list[str] = []
    for c in read_cells(out):
        if c["status"] == "ok":
            records.extend(c["records"])
        else:
            notes.append(f"{c['dataset']}/{c['method']}/seed {c['seed']} skipped: {c.get('note', '')}")
    text = header
    if notes:
        text += ("\n\n" if text else "") + "\n".join(f"- note: {n}" for n in notes)
    store.write_results(Path(out), records, text)
    return records, notes


def _store(out: Path, cell: Cell, payload: dict) -> None:
    store.store_cell(out, cell.filename, payload)


def run_suite(
    spec: SuiteSpec,
    out: str | Path,
    jobs: int = 1,
    on_cell: CellCallback | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> SuiteResult:
    """Run every unfinished cell of `spec` into `out`, then merge all finished cells.

    `on_start(done, total)` is called once with the number of cells already finished;
    `on_cell(cell, payload, done, total)` after each cell is stored. An exception from a
    callback (or an interrupt) stops the run; the cells stored so far are kept.
    """
    out = Path(out)
    if jobs < 1:
        raise PMRFusionError("--jobs must be >= 1")
    for m in spec.methods:
        method_config(m)
    for p in spec.protocols:
        check_protocol(p)
    if not spec.datasets or not spec.methods or not spec.seeds:
        raise PMRFusionError("the suite is empty: give at least one dataset, method and seed")
    store.claim_suite(out, spec.settings(), [c.filename for c in spec.cells()])
    cells = spec.cells()
    todo = [c for c in cells if not store.cell_done(out, c.filename)]  # bad or truncated: recomputed
    total = len(cells)
    done = total - len(todo)
    reused = done
    if on_start is not None:
        on_start(done, total)
    if jobs == 1 or len(todo) <= 1:
        for cell in todo:
            payload = run_cell(cell, spec)
            _store(out, cell, payload)
            done += 1
            if on_cell is not None:
                on_cell(cell, payload, done, total)
    else:
        ctx = multiprocessing.get_context("spawn")
        pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker)
        try:
            with _workers_ignore_ctrl_c():  # the pool spawns its workers on submit
                futures = {pool.submit(run_cell, cell, spec): cell for cell in todo}
            for fut in cf.as_completed(futures):
                cell = futures[fut]
                payload = fut.result()
                _store(out, cell, payload)
                done += 1
                if on_cell is not None:
                    on_cell(cell, payload, done, total)
        except BaseException:
            workers = list((getattr(pool, "_processes", None) or {}).values())  # shutdown drops them
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in workers:
                proc.terminate()  # a cell in flight is lost; the stored ones are whole
            raise
        pool.shutdown(wait=True)
    header = (
        f"# suite: {', '.join(spec.datasets)}; methods {', '.join(spec.methods)}; "
        f"{len(spec.seeds)} seeds; protocols {', '.join(spec.protocols)}"
    )
    records, notes = merge(out, header)
    return SuiteResult(records, len(todo), reused, notes)


__all__ = [
    "SUITES",
    "Cell",
    "SuiteResult",
    "SuiteSpec",
    "available",
    "cell_path",
    "merge",
    "read_cells",
    "run_cell",
    "run_suite",
    "suite_spec",
]
