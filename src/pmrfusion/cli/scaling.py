"""`pmrfusion scaling`: one small suite on each executor; `pmrfusion gpu-check`: GPU tests + figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import DataRoot, split_list
from pmrfusion.paths import atomic_write_text, check_output_dir


@app.command()
def scaling(
    out: Annotated[Path, typer.Option(help="folder for README.md and scaling.csv")] = Path("runs/scaling"),
    datasets: Annotated[str, typer.Option(help="comma-separated datasets")] = "handwritten",
    methods: Annotated[str, typer.Option(help="comma-separated methods")] = "concat,late",
    seeds: Annotated[int, typer.Option(help="seeds 0..seeds-1")] = 2,
    epochs: Annotated[int, typer.Option(help="epochs per cell")] = 2,
) -> None:
    """The same suite with the local pool (1, 2 processes) and Dask (1, 2 workers): time, cells/min."""
    from pmrfusion.analysis.scaling import scaling_study

    check_output_dir(out, "--out")
    rows = scaling_study(out, split_list(datasets), split_list(methods), seeds, epochs, log=console.print)
    same = all(r.identical for r in rows)
    verdict = "yes" if same else "NO"
    console.print(f"{len(rows)} runs; records identical: {verdict}; {out}/README.md, scaling.csv")


@app.command("gpu-check")
def gpu_check(
    out: Annotated[Path, typer.Option(help="folder for README.md (the figures)")] = Path("runs/gpu-check"),
    data_root: DataRoot = None,
) -> None:
    """The GPU-marked tests and a short GPU benchmark (CUB fp32 vs bf16, AV-MNIST end to end)."""
    from pmrfusion.analysis.gpu_check import figures_page, gpu_figures, require_cuda

    require_cuda()
    check_output_dir(out, "--out")
    tests = Path(__file__).resolve().parents[3] / "tests"
    if tests.is_dir():
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", str(tests)],
                             capture_output=True, text=True)  # fmt: skip
        lines = run.stdout.strip().splitlines()
        summary = lines[-1] if lines else f"pytest exited {run.returncode}"
    else:
        summary = "not run (no tests/ folder beside this installation)"
    figures = gpu_figures(None if data_root is None else str(data_root))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "README.md", figures_page(figures, summary))
    console.print(f"GPU tests: {summary}; figures in {out}/README.md")
