"""`pmrfusion report DIR`: report.md + figures from a results folder; optionally BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console
from pmrfusion.errors import PMRFusionError


@app.command()
def report(
    directory: Annotated[
        Path, typer.Argument(help="a bench or suite output folder (results.json or records.csv)")
    ],
    benchmarks: Annotated[
        Path | None, typer.Option(help="also write the report here, figure links rewritten (BENCHMARKS.md)")
    ] = None,
    append: Annotated[
        list[Path] | None,
        typer.Option(help="markdown page appended to --benchmarks, headings one level down (repeatable)"),
    ] = None,
) -> None:
    """Write DIR/report.md with PNG figures from DIR's records."""
    from pmrfusion.bench.report import benchmarks_page, write_report
    from pmrfusion.paths import atomic_write_text, check_output_dir, check_output_file

    if not directory.is_dir():
        raise PMRFusionError(f"results folder not found: {directory}")
    check_output_dir(directory, "DIRECTORY")
    if benchmarks is not None:
        check_output_file(benchmarks, "--benchmarks")
    elif append:
        raise PMRFusionError("--append needs --benchmarks (the page it is appended to)")
    for extra in append or []:
        if not extra.is_file():
            raise PMRFusionError(f"file to append not found: {extra}")
    path = write_report(directory)
    console.print(f"report written to {path}")
    if benchmarks is not None:
        atomic_write_text(benchmarks, benchmarks_page(path, benchmarks, list(append or [])))
        console.print(f"benchmarks written to {benchmarks}")
