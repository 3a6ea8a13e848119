"""Run an experiment file: every grid through the one runner, every finished cell stored at once.

`run_experiment` loads and checks every grid's data first (nothing trains before every grid is
known to be runnable), then runs each grid's missing cells (`fit_cell`: `run_grid` on one method
and seed) on an executor (`bench.executors`: this process, local processes or Dask), slowest
first, storing each cell's records, its training diagnostics and its provenance in the
experiment's folder as soon as it arrives (`bench.experiment_store`); only this process writes.
Cells in worker processes run with one torch thread; in this process, with its threads
(`--threads 1` gives the records of any executor). With `resume`, a stored cell is kept only
when it was made with the same settings (config hash), the same data (fingerprint) and the same
code (source hash; or any code when the experiment file gives `pool_code_versions`); any other
cell runs again.

Training diagnostics, so that a verdict can check a mechanism was engaged, are records of
protocol "training", condition "train": `best_epoch`, `epochs_run`, the best validation metric
(`val_accuracy`, or `val_mae` for regression), and each logged loss term `<term>@first` and
`<term>@best` (its epoch mean in the first and in the best epoch), e.g. `preserve@first`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from pmrfusion.bench.cell_cost import cell_cost
from pmrfusion.bench.executors import CellExecutor, LocalExecutor
from pmrfusion.bench.experiment import Experiment, Grid
from pmrfusion.bench.experiment_store import CellKey, ExperimentStore, cell_key
from pmrfusion.bench.provenance import Provenance, data_fingerprint, provenance, source_hash
from pmrfusion.bench.runner import run_grid
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.raw import RawMultimodalData
from pmrfusion.errors import PMRFusionError
from pmrfusion.train.devices import resolve_device
from pmrfusion.train.trainer import TrainResult

Log = Callable[[str], None]


def training_records(result: TrainResult, base: dict[str, Any], present: list[str]) -> list[dict]:
    """The training diagnostics of one fitted cell as records (see the module docstring)."""
    values: dict[str, float] = {
        "best_epoch": float(result.best_epoch),
        "epochs_run": float(result.epochs_run),
    }
    if not math.isnan(result.best_val_mae):
        values["val_mae"] = result.best_val_mae
    elif not math.isnan(result.best_val_accuracy):
        values["val_accuracy"] = result.best_val_accuracy
    if result.history:
        first = result.history[0]
        best = next((h for h in result.history if h.get("epoch") == result.best_epoch), result.history[-1])
        skip = {"epoch", "val_accuracy", "val_loss", "val_mae"}
        for term in (k for k in first if k not in skip):
            values[f"{term}@first"] = float(first[term])
            values[f"{term}@best"] = float(best.get(term, math.nan))
    return [{**base, "protocol": "training", "condition": "train", "present": present, "metric": k,
             "value": v} for k, v in values.items()]  # fmt: skip


@dataclasses.dataclass
class CellPlan:
    """The cells of one grid: what each would be stored with, and which are already done."""

    grid: Grid
    data: MultimodalData | RawMultimodalData
    fingerprint: str
    hashes: dict[str, Provenance]  # method -> the provenance it would be stored with now
    done: set[tuple[str, int]]  # (method, seed) pairs kept from the store


def _keeps(stored: Provenance, now: Provenance, pool_code: bool) -> bool:
    same = stored.config_hash == now.config_hash and stored.data_fingerprint == now.data_fingerprint
    return same and (pool_code or stored.source_hash == now.source_hash)


def plan(
    exp: Experiment, store: ExperimentStore, data_root: str | None, device: str, grids: Sequence[str] | None
) -> list[CellPlan]:
    """Load and check every selected grid's data; decide which stored cells are kept."""
    selected = [exp.grid(g) for g in grids] if grids else exp.grids
    loaded: dict[str, MultimodalData | RawMultimodalData] = {}
    plans = []
    for grid in selected:
        if grid.dataset not in loaded:
            loaded[grid.dataset] = load_dataset(grid.dataset, data_root)
        data = loaded[grid.dataset]
        grid.spec.check_data(data)
        fingerprint = data_fingerprint(data)
        hashes = {m: provenance(grid.cell_settings(m), fingerprint, device) for m in grid.spec.methods}
        done = {
            (m, s)
            for m in grid.spec.methods
            for s in grid.spec.seeds
            if (cell := store.cells.get((grid.id, data.name, m, s))) is not None
            and _keeps(cell.provenance, hashes[m], bool(exp.pool_code_versions))
        }
        plans.append(CellPlan(grid, data, fingerprint, hashes, done))
    return plans


def stale_cells(exp: Experiment, store: ExperimentStore, plans: list[CellPlan]) -> list[CellKey]:
    """Stored cells this run replaces or that the experiment no longer has."""
    planned = {p.grid.id: p for p in plans}
    wanted = {(g.id, m, s) for g in exp.grids for m in g.spec.methods for s in g.spec.seeds}
    stale = []
    for key in store.cells:
        grid_id, _, method, seed = key
        if method.startswith("baseline:"):  # made by the task with a cell of its seed: remade with it
            p = planned.get(grid_id)
            if p is not None and any((m, seed) not in p.done for m in p.grid.spec.methods):
                stale.append(key)
            continue
        dropped = (grid_id, method, seed) not in wanted
        if dropped or (grid_id in planned and (method, seed) not in planned[grid_id].done):
            stale.append(key)
    return stale


@dataclasses.dataclass(frozen=True)
class CellTask:
    """One (grid, method, seed) to fit: everything a worker needs but the data (it loads that)."""

    grid: Grid
    dataset: str
    method: str
    seed: int


@dataclasses.dataclass(frozen=True)
class CellOutcome:
    records: list[dict]  # the method's records + training diagnostics, each with its grid
    baselines: list[dict]  # records the task made without a method (retrieval), with their grid
    seconds: float


@functools.lru_cache(maxsize=2)
def _dataset(name: str, data_root: str | None) -> MultimodalData | RawMultimodalData:
    return load_dataset(name, data_root)


def fit_cell(task: CellTask, data_root: str | None, device: str) -> CellOutcome:
    """Fit and score one cell through `run_grid` (one method, one seed), in any process."""
    data = _dataset(task.dataset, data_root)
    spec = task.grid.spec
    spec = dataclasses.replace(
        spec, methods=[task.method], seeds=[task.seed],
        train=dataclasses.replace(spec.train, device=device),
        method_train={m: dataclasses.replace(t, device=device) for m, t in spec.method_train.items()
                      if m == task.method},
        method_options={m: o for m, o in spec.method_options.items() if m == task.method},
    )  # fmt: skip
    fitted: list[CellOutcome] = []

    def on_fit(method: str, seed: int, recs: list[dict], result: TrainResult, seconds: float) -> None:
        base = {"grid": task.grid.id, "dataset": data.name, "method": method, "seed": seed}
        records = [{"grid": task.grid.id, **r} for r in recs]
        records += training_records(result, base, list(data.modalities))
        fitted.append(CellOutcome(records, [], seconds))

    everything = run_grid(data, spec, on_fit=on_fit)
    mine = {(r["method"], r["seed"]) for r in fitted[0].records}
    baselines = [{"grid": task.grid.id, **r, "method": f"baseline:{r['method']}"}
                 for r in everything if (r["method"], r["seed"]) not in mine]  # fmt: skip
    return CellOutcome(fitted[0].records, baselines, fitted[0].seconds)


def task_cost(task: CellTask, data: MultimodalData | RawMultimodalData) -> float:
    """`bench.cell_cost` of one task (the queue starts with the slowest)."""
    return cell_cost(task.method, data.num_samples, data.dims)


def run_experiment(
    exp: Experiment,
    data_root: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    grids: Sequence[str] | None = None,
    device: str = "auto",
    log: Log | None = None,
    executor: CellExecutor | None = None,
) -> ExperimentStore:
    """Run the missing cells of `exp` into `exp.out` (see the module docstring); the store.

    Cells run on `executor` (`bench.executors`; default: in this process), slowest first; this
    process stores each one as it arrives."""
    say = log or (lambda _: None)
    store = ExperimentStore.read(exp.out)
    if store.cells and not (resume or overwrite):
        raise PMRFusionError(
            f"{exp.out} holds {len(store.cells)} finished cells of '{exp.name}': --resume to continue, "
            "--overwrite to start again"
        )
    if overwrite:
        store = ExperimentStore(exp.out)
    torch_device = str(resolve_device(device))
    plans = plan(exp, store, data_root, torch_device, grids)
    stale = stale_cells(exp, store, plans)
    if stale:
        say(f"{len(stale)} stored cells are out of date (settings, data or code changed) and run again")
        store.drop(stale)
    tasks = []
    for p in plans:
        todo = [(m, s) for s in p.grid.spec.seeds for m in p.grid.spec.methods if (m, s) not in p.done]
        say(f"grid {p.grid.id}: {len(p.done)} cells kept, {len(todo)} to run (code {source_hash()})")
        tasks += [CellTask(p.grid, p.data.name, m, s) for m, s in todo]
    by_grid = {p.grid.id: p for p in plans}
    tasks.sort(key=lambda t: -task_cost(t, by_grid[t.grid.id].data))
    ex = executor if executor is not None else LocalExecutor(1)
    with ex:
        _run_tasks(ex, tasks, by_grid, store, data_root, device, say)
    return store


def _run_tasks(
    ex: CellExecutor, tasks: list[CellTask], by_grid: dict[str, CellPlan], store: ExperimentStore,
    data_root: str | None, device: str, say: Log,
) -> None:  # fmt: skip
    for task, outcome in ex.map_unordered(fit_cell, tasks, data_root, device):
        p = by_grid[task.grid.id]
        store.put((task.grid.id, p.data.name, task.method, task.seed), outcome.records, outcome.seconds,
                  p.hashes[task.method])  # fmt: skip
        _store_baselines(store, p, outcome.baselines)
        store.save()
        say(f"  {task.grid.id} {task.method} seed {task.seed}: {outcome.seconds:.1f}s")


def _store_baselines(store: ExperimentStore, p: CellPlan, baselines: list[dict]) -> None:
    """Records the task made without fitting a method (retrieval's baselines): one cell per
    (method, seed), named 'baseline:<method>', stored once."""
    extra: dict[CellKey, list[dict]] = {}
    for r in baselines:
        key = cell_key(r)
        if key not in store.cells:
            extra.setdefault(key, []).append(r)
    settings = {**p.grid.settings, "baselines": True}
    for key, recs in extra.items():
        store.put(key, recs, 0.0, provenance(settings, p.fingerprint, next(iter(p.hashes.values())).device))
