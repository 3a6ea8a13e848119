"""`pmrfusion rcml`: the RCML protocol (AAAI 2024), normal vs conflictive test sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console, on_interrupt
from pmrfusion.cli.options import DataRoot, Epochs, split_list
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import check_output_dir


@app.command("rcml")
def rcml_cmd(
    datasets: Annotated[str, typer.Option(help="comma-separated datasets")] = "handwritten,cub,pie",
    methods: Annotated[str, typer.Option(help="comma-separated methods")] = "tmc,ecml",
    runs: Annotated[int, typer.Option(help="random 80/20 runs per dataset")] = 10,
    epochs: Epochs = 500,
    out: Annotated[Path, typer.Option(help="output folder (records.csv, summary.csv)")] = Path("runs/rcml"),
    data_root: DataRoot = None,
    lr: Annotated[str | None, typer.Option(help="per-method learning rates, e.g. tmc=0.003")] = None,
    summarize: Annotated[
        str | None, typer.Option(help="only rewrite OUT/summary.csv from these records.csv (comma-separated)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="keep OUT's finished runs (same settings)")] = False,
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
    from pmrfusion.train.distributed import refuse_under_torchrun

    refuse_under_torchrun("rcml")
    check_output_dir(out, "--out")
    if summarize is not None:
        records = [r for path in split_list(summarize) for r in read_records(path)]
        console.print(str(write_summary(records, out / "summary.csv")))
        console.print(summary_markdown(summarize_rcml(records)))
        return
    spec = RCMLSpec(split_list(methods), runs=runs, epochs=epochs, method_lr=_method_lrs(lr))
    names = split_list(datasets)
    on_interrupt(f"records of the finished runs are in {out}/records.csv (--resume runs the rest)")
    root = str(data_root) if data_root else None
    path = rcml_benchmark(names, spec, str(out), root, resume=resume, on_note=_note)
    console.print(f"summary written to {path}")


def _note(text: str) -> None:
    console.print(f"[yellow]note: {text}[/yellow]")


def _method_lrs(text: str | None) -> dict[str, float]:
    """`--lr tmc=0.003,ecml=0.001` -> {"tmc": 0.003, "ecml": 0.001} (ranges: TrainConfig)."""
    out: dict[str, float] = {}
    for item in [] if text is None else split_list(text):
        method, sep, value = (s.strip() for s in item.partition("="))
        try:
            out[method] = float(value)
        except ValueError:
            sep = ""
        if not sep or not method:
            raise PMRFusionError(f"--lr expects method=rate items, e.g. tmc=0.003, got '{item}'")
    return out
