"""`pmrfusion suite NAME`: every dataset x method x seed under every protocol, resumable."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pmrfusion.cli.app import app, console, on_interrupt
from pmrfusion.cli.options import (
    BatchSize,
    DataRoot,
    Epochs,
    Executor,
    Jobs,
    LabelNoise,
    LearningRate,
    ModalityDropout,
    Quiet,
    Scheduler,
    SetOpt,
    split_list,
    train_config,
)
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import check_output_dir

if TYPE_CHECKING:
    from pmrfusion.bench.executors import CellExecutor
    from pmrfusion.bench.suite import Cell, SuiteResult, SuiteSpec
    from pmrfusion.train.trainer import TrainConfig


@app.command()
def suite(
    name: Annotated[
        str, typer.Argument(help="named suite ('paper': every dataset x method x protocol)")
    ] = "paper",
    datasets_: Annotated[
        str | None, typer.Option("--datasets", help="comma-separated datasets to keep")
    ] = None,
    methods_: Annotated[str | None, typer.Option("--methods", help="comma-separated (default: all)")] = None,
    protocols: Annotated[str | None, typer.Option(help="comma-separated (default: all)")] = None,
    seeds: Annotated[
        int | None, typer.Option(help="number of seeds 0..seeds-1 (default: the suite's)")
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/suite"),
    jobs: Jobs = 1,
    executor: Executor = "local",
    scheduler: Scheduler = None,
    epochs: Epochs = 150,
    lr: LearningRate = 1e-3,
    batch_size: BatchSize = 64,
    set_: SetOpt = None,
    data_root: DataRoot = None,
    quiet: Quiet = False,
    label_noise: LabelNoise = 0.0,
    modality_dropout: ModalityDropout = 0.0,
) -> None:
    """Run a named suite: one file per finished cell under OUT/cells/, so a stopped run resumes."""
    run_suite_command(
        name, datasets_, methods_, protocols, seeds, out, jobs, data_root, quiet, set_,
        train_config(epochs, lr, batch_size, True, label_noise, modality_dropout), executor, scheduler,
    )  # fmt: skip


def run_suite_command(
    suite: str,
    datasets_: str | None,
    methods_: str | None,
    protocols: str | None,
    seeds: int | None,
    out: Path,
    jobs: int,
    data_root: Path | None,
    quiet: bool,
    set_: list[str] | None,
    tc: TrainConfig,
    executor: str = "local",
    scheduler: str | None = None,
) -> None:
    from pmrfusion.bench.executors import cell_executor
    from pmrfusion.bench.suite import Terminated, available, default_protocols, suite_spec
    from pmrfusion.eval.protocols import check_protocol
    from pmrfusion.methods import method_config
    from pmrfusion.methods.base import parse_overrides
    from pmrfusion.train.distributed import refuse_under_torchrun

    refuse_under_torchrun("suite")
    check_output_dir(out, "--out")
    ex = cell_executor(executor, jobs, scheduler)
    on_interrupt(
        f"every finished cell is kept in {out}/cells/ (rerun the same command to resume); "
        "nothing was half-written"
    )
    protos = default_protocols() if protocols is None else split_list(protocols)
    for p in protos:
        check_protocol(p)
    spec = suite_spec(
        suite,
        None if datasets_ is None else split_list(datasets_),
        None if methods_ is None else split_list(methods_),
        seeds,
        protocols=protos,
        train=tc,
        data_root=str(data_root) if data_root is not None else None,
    )
    for m in spec.methods:
        method_config(m)
    spec.method_overrides = parse_overrides(spec.methods, set_ or [])
    spec.datasets, notes = available(spec.datasets, spec.data_root)
    for note in notes:
        console.print(f"[yellow]note: {note}[/yellow]")
    if not spec.datasets:
        raise PMRFusionError("no dataset of the suite is available (see the notes above)")
    console.print(
        f"suite '{suite}': {len(spec.datasets)} datasets x {len(spec.methods)} methods x "
        f"{len(spec.seeds)} seeds = {len(spec.cells())} cells; protocols {', '.join(spec.protocols)}; "
        f"{jobs} job(s) on the {executor} executor; output {out}"
    )
    start = time.perf_counter()

    def on_note(text: str) -> None:
        console.print(f"[yellow]note: {text}[/yellow]")

    try:
        result = _run(spec, out, jobs, quiet, on_note, ex)
    except Terminated:
        workers = "; its workers were stopped" if jobs > 1 else ""
        print(
            f"terminated: every finished cell is kept in {out}/cells/ (rerun the same command to resume)"
            + workers,
            file=sys.stderr,
        )
        raise typer.Exit(143) from None
    for note in [*result.notes, *(f"left out of the results: {n}" for n in result.ignored)]:
        console.print(f"[yellow]note: {note}[/yellow]")
    elapsed = time.perf_counter() - start
    redone = f" ({len(result.recomputed)} replacing cell files not accepted)" if result.recomputed else ""
    console.print(
        f"{result.ran} cells run{redone}, {result.reused} reused; {len(result.records)} records in "
        f"{out}/results.json (.csv, .md) in {elapsed:.0f}s; `pmrfusion report {out}` for the report"
    )


def _run(
    spec: SuiteSpec, out: Path, jobs: int, quiet: bool, on_note: Callable[[str], None], ex: CellExecutor
) -> SuiteResult:
    """`run_suite` with a progress bar unless `quiet`."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from pmrfusion.bench.suite import run_suite

    if quiet:
        return run_suite(spec, out, jobs, on_note=on_note, executor=ex)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("cells", total=len(spec.cells()))

        def on_start(done: int, total: int) -> None:
            progress.update(bar, completed=done, description=f"cells ({done} done before)")

        def on_cell(cell: Cell, payload: dict, done: int, total: int) -> None:
            status = "" if payload["status"] == "ok" else " [yellow]skipped[/yellow]"
            progress.update(bar, completed=done, description=f"{cell} ({payload['seconds']:.1f}s){status}")

        return run_suite(spec, out, jobs, on_cell, on_start, on_note, ex)
