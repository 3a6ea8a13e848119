"""The `bench` command's run: `run_grid` with every finished (method, seed) cell stored at once.

Layout of the output folder DIR (as a suite's): DIR/bench.json holds the settings every cell must
share; DIR/cells/<dataset>__<method>__seed<k>.json one finished cell each (`records.store_cell`:
checksummed, with the settings' digest), written as soon as the cell is scored, so Ctrl-C or a
crash keeps every finished cell; DIR/results.json (.csv, .md) all records, written at the end in
the grid's order (seeds, then methods), the same bytes whether cells were run now or resumed.

A folder that already holds results (results.* or cells) is refused unless `resume` (its
finished cells with the same settings are kept and skipped, a cell made with other settings is
an error) or `overwrite` (its cells and results are removed first).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pmrfusion.bench import records as store
from pmrfusion.bench.runner import RunSpec, get_task, run_grid
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.raw import RawMultimodalData
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import atomic_write_text, check_output_dir, run_folder

BENCH_FORMAT = "pmrfusion-bench-1"
BENCH_FILE = "bench.json"
RESULT_FILES = ("results.json", "results.csv", "results.md")


def holds_results(out: str | Path) -> bool:
    """True when `out` has results files or stored cells."""
    out = Path(out)
    cells = out / store.CELLS
    return any((out / f).exists() for f in RESULT_FILES) or (cells.is_dir() and any(cells.glob("*.json")))


def check_bench_out(out: str | Path, resume: bool = False, overwrite: bool = False) -> Path:
    """`out` can take a bench run (call before any work): a writable folder, and one that holds no
    results unless `resume` or `overwrite` (not both)."""
    if resume and overwrite:
        raise PMRFusionError("--resume and --overwrite exclude each other")
    out = check_output_dir(out, "--out")
    if holds_results(out) and not (resume or overwrite):
        raise PMRFusionError(
            f"--out: {out} already holds results: pass --resume to keep its finished cells and run the "
            "rest, --overwrite to replace them, or choose another folder"
        )
    return out


def bench_settings(dataset: str, spec: RunSpec) -> dict:
    """What every cell of one bench folder shares (not the sets of methods and seeds)."""
    tc = store.cell_train_settings(spec.train)
    return {
        "format": BENCH_FORMAT,
        "dataset": dataset,
        "protocols": list(spec.protocols),
        "train": tc,
        "method_overrides": {k: repr(v) for k, v in sorted(spec.method_overrides.items())},
        "encoder": repr(spec.encoder),
        "val_fraction": spec.val_fraction,
        "task": spec.task,
    }


def run_bench(
    data: MultimodalData | RawMultimodalData,
    spec: RunSpec,
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    on_cell: Callable[[str, int, float], None] | None = None,
    header: str = "",
) -> tuple[list[dict], int]:
    """Run `spec` on `data` into `out` (see the module's doc); returns (every record in grid order,
    number of cells kept from an earlier run)."""
    out = check_bench_out(out, resume, overwrite)
    spec.check_data(data)  # before anything is written
    if get_task(spec.task).baselines is not None:
        raise PMRFusionError(f"run_bench stores method cells only; task '{spec.task}' has baselines")
    settings = bench_settings(data.name, spec)
    digest = store.settings_digest(settings)
    with run_folder(out, [store.CELLS]):
        if overwrite:  # the old run goes entirely, so an interrupted new one never sits beside it
            for p in (out / store.CELLS).glob("*.json") if (out / store.CELLS).is_dir() else []:
                p.unlink()
            for name in RESULT_FILES:
                (out / name).unlink(missing_ok=True)
        done = _finished_cells(out, digest) if resume else {}
        atomic_write_text(out / BENCH_FILE, json.dumps({"settings": settings}, indent=1) + "\n")
        wanted = {(m, s) for m in spec.methods for s in spec.seeds}
        kept = {key: recs for key, recs in done.items() if key in wanted}

        def store_finished(method: str, seed: int, recs: list[dict]) -> None:
            payload = {"dataset": data.name, "method": method, "seed": seed, "status": "ok", "records": recs}
            store.store_cell(out, store.cell_filename(data.name, method, seed), payload, digest)
            kept[(method, seed)] = recs

        if len(kept) < len(wanted):
            run_grid(data, spec, on_cell, skip=set(kept), on_records=store_finished)
        records = [r for s in spec.seeds for m in spec.methods for r in kept[(m, s)]]
        store.write_results(out, records, header)
    return records, len(done.keys() & wanted)


def _finished_cells(out: Path, digest: str) -> dict[tuple[str, int], list[dict]]:
    """(method, seed) -> records of every acceptable cell in OUT/cells; a cell made with other
    settings is an error (resuming would mix two runs)."""
    cells, ignored = store.scan_cells(out, None)
    other = [f"{c['method']}/seed {c['seed']}" for c in cells if c.get("settings_sha256") != digest]
    if other:
        raise PMRFusionError(
            f"--resume: {out} holds cells made with other settings ({', '.join(other[:3])}): use the same "
            "options, --overwrite, or another folder"
        )
    return {(c["method"], c["seed"]): c["records"] for c in cells if c.get("status") == "ok"}


__all__ = ["bench_settings", "check_bench_out", "holds_results", "run_bench"]
