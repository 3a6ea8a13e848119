"""Commands that regenerate committed result pages: bench-dynamic, bench-pmr-family, speed,
robustness-summary, select-on-validation. Each prints its markdown; --out also writes it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, on_interrupt
from pmrfusion.cli.options import Epochs, Threads, split_list
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import check_output_dir, check_output_file


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _write(out: Path | None, text: str) -> None:
    if out is not None:
        from pmrfusion.paths import atomic_write_text

        atomic_write_text(out, text)


def _check_seeds(seeds: int) -> None:
    from pmrfusion.train.trainer import seed_range

    if seeds < 1:
        raise PMRFusionError("--seeds must be >= 1")
    seed_range(seeds)


def _check_threads(threads: int) -> None:
    if threads < 1:
        raise PMRFusionError(f"--threads must be >= 1, got {threads}")


def _check_out(out: Path | None) -> None:
    if out is not None:
        check_output_file(out, "--out")


@app.command("bench-dynamic")
def bench_dynamic(
    seeds: Annotated[int, typer.Option(help="seeds 0..seeds-1")] = 5,
    datasets: Annotated[str, typer.Option(help="comma-separated")] = "cub,pie",
    out: Annotated[Path | None, typer.Option(help="also write the page here")] = Path(
        "runs/dynamic/README.md"
    ),
    threads: Threads = 1,
) -> None:
    """QMF, PDF, IID vs static baselines under Gaussian noise, paper claims checked, throughput."""
    from pmrfusion.analysis.dynamic_benchmark import dynamic_benchmark

    _check_seeds(seeds)
    _check_threads(threads)
    _check_out(out)
    text = dynamic_benchmark(split_list(datasets), seeds, threads, log=_err)
    print(text)
    _write(out, text)


@app.command("bench-pmr-family")
def bench_pmr_family(
    seeds: Annotated[int, typer.Option(help="seeds 0..seeds-1")] = 5,
    epochs: Epochs = 60,
    patience: Annotated[int, typer.Option(help="early-stopping patience in epochs")] = 15,
    only: Annotated[str, typer.Option(help="sections: wiki,cub,pie")] = "wiki,cub,pie",
    raw: Annotated[Path, typer.Option(help="cache of raw records")] = Path("runs/pmr_family"),
    out: Annotated[Path | None, typer.Option(help="also write the page here")] = Path(
        "runs/pmr-family/README.md"
    ),
) -> None:
    """Small PMR-family benchmark: Wikipedia retrieval vs CCA, CUB keep-one, PIE 7-subset table."""
    from pmrfusion.analysis.pmr_family import SECTIONS as PMR_FAMILY_SECTIONS
    from pmrfusion.analysis.pmr_family import pmr_family_page

    _check_seeds(seeds)
    sections = split_list(only)
    unknown = sorted(set(sections) - set(PMR_FAMILY_SECTIONS))
    if unknown:
        raise PMRFusionError(f"unknown --only section(s) {unknown}: use {', '.join(PMR_FAMILY_SECTIONS)}")
    _check_out(out)
    check_output_dir(raw, "--raw")
    on_interrupt(f"finished sections' raw records are kept in {raw}/ (a rerun reuses them)")
    text = pmr_family_page(seeds, epochs, patience, only, raw, log=_err)
    print(text, end="")
    _write(out, text)


@app.command("speed")
def speed(
    methods: Annotated[str, typer.Option(help="comma-separated")] = "concat,late,sg-concat,rg-concat",
    dataset: Annotated[str, typer.Option(help="built-in name or path")] = "cub",
    threads: Threads = 2,
    kernel: Annotated[
        str, typer.Option(help="optimizer kernel(s), comma-separated, e.g. single,auto (before/after)")
    ] = "auto",
) -> None:
    """Training throughput, inference latency, and PMR's FLOP/s vs the matmul roofline (markdown)."""
    from pmrfusion.analysis.speed import speed_tables
    from pmrfusion.optim import check_kernel

    names = split_list(methods)
    kernels = split_list(kernel)
    for k in kernels:
        check_kernel(k)
    _check_threads(threads)
    speed_tables(names, dataset, threads, kernels=kernels)


@app.command("robustness-summary")
def robustness_summary(
    directories: Annotated[list[Path], typer.Argument(help="bench output folders")],
) -> None:
    """Per method: clean, mean leave-one-out, mean keep-one, gaussian eps=10 (mean ± std (worst))."""
    from pmrfusion.analysis.robustness_summary import robustness_summary as table

    print(table(directories))


@app.command("select-on-validation")
def select_on_validation(
    dataset: Annotated[str, typer.Option(help="built-in name or path")] = "handwritten",
    seeds: Annotated[int, typer.Option(help="seeds 0..seeds-1")] = 3,
) -> None:
    """Compare sg-concat variants on the validation split only (clean, leave-one-out, keep-one)."""
    from pmrfusion.analysis.select_on_validation import select_on_validation as run

    _check_seeds(seeds)
    run(dataset, seeds, print=lambda *a, **k: print(*a, **{**k, "flush": True}))
