"""The one-command benchmark suite: datasets x methods x seeds, every protocol, resumable.

Layout of the output folder DIR:
- DIR/suite.json: the settings that every cell must share (protocols, training config, method
  options, validation fraction). A later run with different settings is refused.
- DIR/cells/<dataset>__<method>__seed<k>.json: one file per finished cell, written
  atomically with a checksum and the digest of the settings; status "ok" with its records, or
  "skipped" with a note (e.g. a method that cannot run on that dataset). A cell whose file is
  valid is never recomputed; one that is truncated, fails or lacks its checksum, names another
  cell or was made with other settings is recomputed, and the run says so
  (`records.check_cell`); delete the file to recompute it. A folder where a cell file should be,
  or a file where cells/ should be, is refused before any work.
The file layout and its durability live in `bench.records`; the settings check and claim of
suite.json happen under an fcntl lock on DIR/.suite.lock.
- DIR/results.json (.csv, .md): every finished cell's records merged in a fixed order
  (dataset, method, seed), rewritten atomically after the run.

Cells run on an executor (`bench.executors`): in the calling process (`jobs=1`), in `jobs`
local worker processes, or on a Dask cluster. Every cell runs with one torch thread wherever it
runs, and only this process writes cells, so the records depend on neither `jobs` nor the
executor. Local workers die with the parent, and SIGTERM to the parent stops them
(`Terminated`), so a killed suite never leaves workers holding its output pipe.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pmrfusion.bench import records as store
from pmrfusion.bench.cell_cost import cell_cost
from pmrfusion.bench.executors import WORKER_NAME, CellExecutor, LocalExecutor, WorkerLost, die_with_parent
from pmrfusion.bench.runner import RunSpec, prepare_seed, run_one
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset, require_feature_vectors
from pmrfusion.errors import PMRFusionError, check_distinct
from pmrfusion.eval.protocols import available_protocols, check_protocol
from pmrfusion.methods import available_methods, method_config
from pmrfusion.paths import run_folder
from pmrfusion.train.trainer import TrainConfig, seed_range

SUITE_FORMAT = "pmrfusion-suite-1"
# Named suites: the classification datasets of shared/data, every method, every protocol.
SUITES: dict[str, dict[str, Any]] = {
    "paper": {"datasets": ("handwritten", "cub", "pie", "wikipedia"), "seeds": 5},
}
MAX_SEEDS = 10_000  # one suite's seeds (each seed is a cell per dataset x method)


class Terminated(KeyboardInterrupt):
    """SIGTERM reached a running suite: the workers were stopped, the finished cells are kept."""


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
        tc = store.cell_train_settings(self.train)
        return {
            "format": SUITE_FORMAT,
            "protocols": list(self.protocols),
            "train": tc,
            "method_overrides": {k: repr(v) for k, v in sorted(self.method_overrides.items())},
            "val_fraction": self.val_fraction,
        }

    def check(self) -> None:
        """Non-empty, no name twice, known methods and protocols (before anything is written)."""
        for what, values in (("datasets", self.datasets), ("methods", self.methods),
                             ("seeds", self.seeds), ("protocols", self.protocols)):  # fmt: skip
            check_distinct(values, what)
        if not self.datasets or not self.methods or not self.seeds:
            raise PMRFusionError("the suite is empty: give at least one dataset, method and seed")
        for m in self.methods:
            method_config(m)
        for p in self.protocols:
            check_protocol(p)


@dataclass
class SuiteResult:
    records: list[dict]
    ran: int  # cells computed in this call
    reused: int  # cells found finished from an earlier call
    notes: list[str]  # skipped cells (also in results.md)
    recomputed: list[str] = field(default_factory=list)  # 'cells/NAME: why' of cell files not accepted
    ignored: list[str] = field(default_factory=list)  # other cell files left out of the results


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
    if isinstance(n_seeds, int) and MAX_SEEDS < n_seeds <= 2**32:  # beyond: seed_range's range error
        raise PMRFusionError(f"--seeds {n_seeds}: a suite takes at most {MAX_SEEDS} seeds")
    if isinstance(n_seeds, int) and n_seeds < 1:
        raise PMRFusionError("a suite needs at least 1 seed")
    seed_list = seed_range(n_seeds)
    spec = SuiteSpec(
        datasets=list(datasets or base["datasets"]),
        methods=list(methods or sorted(available_methods())),
        seeds=seed_list,
        **kwargs,
    )
    spec.check()
    return spec


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
        run = RunSpec([cell.method], spec.protocols, [cell.seed], spec.method_overrides, spec.train,
                      spec.val_fraction)  # fmt: skip
        prepared = prepare_seed(data, cell.seed, spec.val_fraction)
        records, result = run_one(cell.method, prepared, cell.seed, run, data.name)
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


def _cost(cell: Cell, data_root: str | None) -> float:
    try:
        data = _dataset(cell.dataset, data_root)
    except PMRFusionError:  # the cell is skipped when it runs
        return 0.0
    return cell_cost(cell.method, data.num_samples, data.dims)


def _last_frame(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    return f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises `Terminated` in the main thread during the block (so workers are stopped)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# ----------------------------------------------------------------------------- the folder


def cell_path(out: Path, cell: Cell) -> Path:
    return store.cell_path(out, cell.filename)


def read_cells(out: Path, settings_sha256: str | None = None) -> list[dict]:
    """Every finished cell's payload (of those settings, when given), ordered by (dataset, method, seed)."""
    return store.read_cells(out, settings_sha256)


def merge(out: Path, header: str = "", settings_sha256: str | None = None) -> tuple[list[dict], list[str]]:
    """Write DIR/results.json (.csv, .md) from the finished cells (of those settings, when given);
    returns (records, notes on skipped cells)."""
    records: list[dict] = []
    notes: list[str] = []
    for c in read_cells(out, settings_sha256):
        if c["status"] == "ok":
            records.extend(c["records"])
        else:
            notes.append(f"{c['dataset']}/{c['method']}/seed {c['seed']} skipped: {c.get('note', '')}")
    text = header
    if notes:
        text += ("\n\n" if text else "") + "\n".join(f"- note: {n}" for n in notes)
    store.write_results(Path(out), records, text)
    return records, notes


def check_folder(out: Path, cells: Sequence[Cell]) -> None:
    """Refuse, before any work, an OUT whose layout a run could not write: a file at OUT/cells,
    a folder (or other non-file) where a cell file, suite.json or a results file goes."""
    folder = out / store.CELLS
    if folder.exists() and not folder.is_dir():
        raise PMRFusionError(f"{folder} is a file, not the suite's cells folder; move it or use a new --out")
    paths = [out / store.SUITE_FILE, *(out / f"results.{x}" for x in ("json", "csv", "md"))]
    for path in [*paths, *(cell_path(out, c) for c in cells)]:
        if path.exists() and not path.is_file():
            raise PMRFusionError(f"{path} is a folder (not a file) where the suite writes a file; remove it")


def _kept(out: Path, done: int) -> str:
    return f"{done} finished cells are kept in {out}/{store.CELLS}/ (rerun the same command to resume)"


def _store(out: Path, cell: Cell, payload: dict, digest: str, done: int) -> None:
    try:
        store.store_cell(out, cell.filename, payload, digest)
    except PMRFusionError as e:  # disk full, ...: the cells stored so far are whole
        raise PMRFusionError(f"{e}; {_kept(out, done)}") from None


def run_suite(
    spec: SuiteSpec,
    out: str | Path,
    jobs: int = 1,
    on_cell: CellCallback | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    executor: CellExecutor | None = None,
) -> SuiteResult:
    """Run every unfinished cell of `spec` into `out`, then merge all finished cells.

    Cells run on `executor` (`bench.executors`; default `LocalExecutor(jobs)`), slowest first
    (`bench.cell_cost`); only this process stores them, so the records do not depend on it.

    `on_note(text)` is called for each cell file that is not accepted and is recomputed (and for
    each stale temporary file removed); `on_start(done, total)` once with the number of cells
    already finished; `on_cell(cell, payload, done, total)` after each cell is stored. An exception
    from a callback, an interrupt or SIGTERM (`Terminated`) stops the run and its workers; the cells
    stored so far are kept.
    """
    out = Path(out)
    if jobs < 1:
        raise PMRFusionError("--jobs must be >= 1")
    spec.check()
    cells = spec.cells()
    check_folder(out, cells)
    settings = spec.settings()
    digest = store.settings_digest(settings)
    note = on_note or (lambda text: None)
    with run_folder(out, [store.CELLS]) as removed:
        for path in removed:
            note(f"removed {path.relative_to(out)}, a temporary file of a run that was killed")
        store.claim_suite(out, settings, [c.filename for c in cells])
        todo, recomputed = [], []
        for c in cells:
            payload, why = store.check_cell(cell_path(out, c), digest)
            if payload is None:
                todo.append(c)
                if why != "missing":
                    recomputed.append(f"{store.CELLS}/{c.filename}: {why}")
                    note(f"{store.CELLS}/{c.filename} is recomputed: {why}")
        total = len(cells)
        done = total - len(todo)
        reused = done
        if on_start is not None:
            on_start(done, total)
        order = sorted(todo, key=lambda c: -_cost(c, spec.data_root))  # slowest first
        ex = executor if executor is not None else LocalExecutor(jobs)
        with _sigterm_raises(), ex:
            try:
                for cell, payload in ex.map_unordered(run_cell, order, spec):
                    _store(out, cell, payload, digest, done)
                    done += 1
                    if on_cell is not None:
                        on_cell(cell, payload, done, total)
            except WorkerLost as e:
                raise PMRFusionError(f"a suite worker died (killed, or out of memory?) while {e.item} ran; "
                                     f"{_kept(out, done)}") from None  # fmt: skip
        header = (
            f"# suite: {', '.join(spec.datasets)}; methods {', '.join(spec.methods)}; "
            f"{len(spec.seeds)} seeds; protocols {', '.join(spec.protocols)}"
        )
        ignored = [n for n in store.scan_cells(out, digest)[1] if n not in recomputed]
        try:
            records, notes = merge(out, header, digest)
        except PMRFusionError as e:
            kept = f"every finished cell is kept in {out}/{store.CELLS}/ (rerun to merge)"
            raise PMRFusionError(f"{e}; {kept}") from None
    return SuiteResult(records, len(todo), reused, notes, recomputed, ignored)


__all__ = [
    "SUITES",
    "WORKER_NAME",
    "Cell",
    "SuiteResult",
    "SuiteSpec",
    "Terminated",
    "available",
    "cell_path",
    "check_folder",
    "die_with_parent",
    "merge",
    "read_cells",
    "run_cell",
    "run_suite",
    "suite_spec",
]
