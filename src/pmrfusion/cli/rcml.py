"""`pmrfusion rcml`: the RCML protocol (AAAI 2024), normal vs conflictive test sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console
from pmrfusion.cli.options import DataRoot, split_list
from pmrfusion.paths import check_output_dir


@app.command("rcml")
def rcml_cmd(
    datasets: Annotated[str, typer.Option(help="comma-separated datasets")] = "handwritten,cub,pie",
    methods: Annotated[str, typer.Option(help="comma-separated methods")] = "tmc,ecml",
    runs: int = 10,
    epochs: int = 500,
    out: Path = Path("runs/rcml"),
    data_root: DataRoot = None,
    lr: Annotated[str | None, typer.Option(help="per-method learning rates, e.g. tmc=0.003")] = None,
    summarize: Annotated[Path | None, typer.Option(help="only rewrite OUT/summary.csv from it")] = None,
) -> None:
    """RCML protocol: min-max on the whole set, random 80/20 per run -> OUT/summary.csv."""
    from pmrfusion.bench.rcml import (
        RCMLSpec,
        rcml_benchmark,
        read_records,
        summarize_rcml,
        summary_markdown,
        write_summary,
    )

    check_output_dir(out, "--out")
    if summarize is not None:
        records = read_records(summarize)
        console.print(str(write_summary(records, out / "summary.csv")))
        console.print(summary_markdown(summarize_rcml(records)))
        return
    lrs = {k: float(v) for k, v in (item.split("=", 1) for item in split_list(lr or ""))}
    spec = RCMLSpec(split_list(methods), runs=runs, epochs=epochs, method_lr=lrs)
    path = rcml_benchmark(split_list(datasets), spec, str(out), str(data_root) if data_root else None)
    console.print(f"summary written to {path}")
