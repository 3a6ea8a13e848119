"""`pmrfusion run EXPERIMENT.toml`: an experiment file's cells, records and page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pmrfusion.cli.app import app, console, on_interrupt
from pmrfusion.cli.options import DataRoot, Device, Executor, Jobs, Scheduler, split_list
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import atomic_write_text


@app.command()
def run(
    experiment: Annotated[Path, typer.Argument(help="experiment file (TOML), e.g. experiments/bench.toml")],
    resume: Annotated[
        bool, typer.Option(help="keep the finished cells that are still current; run the rest")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="discard the folder's cells and run everything")] = False,
    grids: Annotated[str | None, typer.Option(help="comma-separated grid ids to run (default: all)")] = None,
    page_only: Annotated[bool, typer.Option(help="only rewrite the page from the stored records")] = False,
    out: Annotated[
        Path | None, typer.Option(help="folder for records and page (default: the file's `out`)")
    ] = None,
    claims: Annotated[
        Path | None,
        typer.Option(help="claims file whose verdicts the page shows (default: claims.toml beside it)"),
    ] = None,
    data_root: DataRoot = None,
    device: Device = "auto",
    jobs: Jobs = 1,
    executor: Executor = "local",
    scheduler: Scheduler = None,
) -> None:
    """Run an experiment file's missing cells (resumable), then write its page from the records."""
    from pmrfusion.bench.executors import cell_executor
    from pmrfusion.bench.experiment import load_experiment
    from pmrfusion.bench.experiment_page import write_page
    from pmrfusion.bench.experiment_run import run_experiment
    from pmrfusion.bench.experiment_store import ExperimentStore
    from pmrfusion.train.distributed import refuse_under_torchrun

    refuse_under_torchrun("run")
    ex = cell_executor(executor, jobs, scheduler)
    if resume and overwrite:
        raise PMRFusionError("--resume and --overwrite exclude each other")
    exp = load_experiment(experiment)
    if out is not None:
        exp = type(exp)(**{**exp.__dict__, "out": out})
    claims_path = claims if claims is not None else experiment.parent / "claims.toml"
    if claims is not None and not claims.exists():
        raise PMRFusionError(f"claims file {claims} not found")
    if page_only:
        store = ExperimentStore.read(exp.out)
        if not store.cells:
            raise PMRFusionError(f"{exp.out} holds no cells of '{exp.name}': run it first")
    else:
        on_interrupt(f"every finished cell is kept in {exp.out}/records.csv; --resume continues")
        store = run_experiment(
            exp, None if data_root is None else str(data_root), resume, overwrite,
            split_list(grids) if grids else None, device, lambda line: console.print(escape(line)), ex,
        )  # fmt: skip
    page = write_page(exp, store, claims_path)
    console.print(f"{len(store.cells)} cells in {exp.out}/records.csv; page {page}")


@app.command()
def verdicts(
    claims: Annotated[Path, typer.Argument(help="claims file (TOML), e.g. experiments/claims.toml")],
    out: Annotated[Path, typer.Option(help="folder for README.md and verdicts.csv")] = Path("runs/verdicts"),
) -> None:
    """Judge every claim of the claims file from its experiment's records (paired t over seeds)."""
    from pmrfusion.bench.experiment_page import write_verdicts

    if not claims.exists():
        raise PMRFusionError(f"claims file {claims} not found")
    found = write_verdicts(claims, out)
    console.print(f"{len(found)} verdicts written to {out}/README.md and verdicts.csv")


@app.command()
def benchmarks(
    experiments: Annotated[Path, typer.Argument(help="folder of experiment files")] = Path("experiments"),
    out: Annotated[Path, typer.Option(help="the page to write")] = Path("runs/BENCHMARKS.md"),
    superseded: Annotated[
        list[Path] | None, typer.Option("--superseded", help="an older results page to link (repeatable)")
    ] = None,
) -> None:
    """BENCHMARKS.md from the experiments' committed records: headline tables, verdicts, links."""
    from pmrfusion.bench.experiment_page import benchmarks_page

    if not experiments.is_dir():
        raise PMRFusionError(f"{experiments} is not a folder of experiment files")
    for page in superseded or []:
        if not page.is_file():
            raise PMRFusionError(f"--superseded {page}: not a file")
    text = benchmarks_page(experiments, superseded or [])
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    console.print(f"benchmarks written to {out}")
