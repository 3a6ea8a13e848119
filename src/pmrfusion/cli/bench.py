"""`pmrfusion bench`: methods x seeds on one dataset under protocols; DIR/results.*."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app, console, on_interrupt
from pmrfusion.cli.options import (
    DataRoot,
    Device,
    LabelNoise,
    ModalityDropout,
    OptimizerKernel,
    Precision,
    Quiet,
    SetOpt,
    split_list,
    train_config,
)
from pmrfusion.cli.summary import print_summary
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import check_output_dir


@app.command()
def bench(
    dataset: Annotated[
        str, typer.Option(help="built-in name or path to .npz/.mat or a .csv/.jsonl manifest")
    ] = "handwritten",
    methods_: Annotated[
        str | None, typer.Option("--methods", help="comma-separated (default concat,late,sg-concat)")
    ] = None,
    protocols: Annotated[
        str | None, typer.Option(help="comma-separated (default clean,missing,gaussian)")
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="number of seeds 0..seeds-1 (default 3)")] = None,
    first_seed: Annotated[
        int, typer.Option(help="seeds run are first_seed..first_seed+seeds-1 (to add seeds to a run)")
    ] = 0,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/bench"),
    resume: Annotated[
        bool, typer.Option(help="keep --out's finished (method, seed) cells (same settings); run the rest")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="replace the results already in --out")] = False,
    epochs: Annotated[int, typer.Option(help="training epochs (best validation epoch kept)")] = 150,
    lr: Annotated[float, typer.Option(help="learning rate")] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 64,
    set_: SetOpt = None,
    data_root: DataRoot = None,
    quiet: Quiet = False,
    label_noise: LabelNoise = 0.0,
    modality_dropout: ModalityDropout = 0.0,
    task: Annotated[
        str, typer.Option(help="deprecated alias: 'retrieval' runs `pmrfusion retrieval`")
    ] = "classification",
    suite: Annotated[str | None, typer.Option(help="deprecated alias of `pmrfusion suite NAME`")] = None,
    datasets_: Annotated[
        str | None, typer.Option("--datasets", help="deprecated (with --suite): see `pmrfusion suite`")
    ] = None,
    jobs: Annotated[int, typer.Option(help="deprecated (with --suite): see `pmrfusion suite`")] = 1,
    encoders: Annotated[
        str | None, typer.Option(help="raw data: modality=encoder list, e.g. image=cnn,audio=audio-cnn")
    ] = None,
    regime: Annotated[str, typer.Option(help="raw data: end-to-end, frozen or finetune")] = "end-to-end",
    device: Device = "auto",
    precision: Precision = "32",
    optimizer_kernel: OptimizerKernel = "auto",
) -> None:
    """Train methods x seeds, evaluate every protocol; print a summary and write DIR/results.*.

    The whole benchmark suite is `pmrfusion suite`, retrieval is `pmrfusion retrieval`
    (`--suite` and `--task retrieval` here are deprecated aliases of those commands).
    """
    from pmrfusion.bench.bench_run import check_bench_out, run_bench
    from pmrfusion.bench.runner import RunSpec, encoder_config_for
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.methods.base import parse_overrides
    from pmrfusion.train.distributed import refuse_under_torchrun
    from pmrfusion.train.trainer import seed_range

    refuse_under_torchrun("bench")
    check_output_dir(out, "--out")
    if task == "classification" and suite is None:
        check_bench_out(out, resume, overwrite)
    if task == "retrieval":
        from pmrfusion.bench.retrieval import retrieval_experiment

        names = split_list("cmmp,rg-cmmp,sg-cmmp" if methods_ is None else methods_)
        retrieval_experiment(
            dataset, names, 5 if seeds is None else seeds, out,
            epochs=epochs, lr=lr, data_root=data_root, log=console.print,
        )  # fmt: skip
        return
    if task != "classification":
        raise PMRFusionError(f"unknown task '{task}': use 'classification' or 'retrieval'")
    if suite is not None:
        from pmrfusion.cli.suite import run_suite_command

        run_suite_command(
            suite, datasets_, methods_, protocols, seeds, out, jobs, data_root, quiet, set_,
            train_config(
                epochs, lr, batch_size, True, label_noise, modality_dropout, optimizer_kernel=optimizer_kernel
            ),
        )  # fmt: skip
        return
    if datasets_ is not None or jobs != 1:
        raise PMRFusionError("--datasets and --jobs apply to suite runs only: use `pmrfusion suite`")
    seed_list = seed_range(3 if seeds is None else seeds, first_seed)
    method_list = split_list("concat,late,sg-concat" if methods_ is None else methods_)
    spec = RunSpec(
        methods=method_list,
        protocols=split_list("clean,missing,gaussian" if protocols is None else protocols),
        seeds=seed_list,
        method_overrides=parse_overrides(method_list, set_ or []),
        train=train_config(
            epochs, lr, batch_size, True, label_noise, modality_dropout, device, precision, optimizer_kernel
        ),
    )
    spec.check()
    data = load_dataset(dataset, data_root)
    spec.encoder = encoder_config_for(data, encoders, regime)
    console.print(data.summary())
    for note in data.notes:
        console.print(f"[dim]note: {note}[/dim]")
    start = time.perf_counter()
    total = len(spec.methods) * len(spec.seeds)
    header = (
        f"# {data.name}: {', '.join(spec.methods)}; {len(spec.seeds)} seeds; "
        f"protocols {', '.join(spec.protocols)}"
    )
    on_interrupt(f"every finished cell is kept in {out}/cells/ (--resume runs the rest)")
    if quiet:
        records, kept = run_bench(data, spec, out, resume, overwrite, header=header)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            bar = progress.add_task("bench", total=total)

            def on_cell(method: str, seed: int, seconds: float) -> None:
                progress.update(bar, advance=1, description=f"{method} seed {seed} ({seconds:.1f}s)")

            records, kept = run_bench(data, spec, out, resume, overwrite, on_cell, header)
    if kept:
        console.print(f"{kept} finished cells of {total} kept from {out}")
    print_summary(records, len(data.modalities))
    elapsed = time.perf_counter() - start
    console.print(f"{len(records)} records written to {out}/results.json (.csv, .md) in {elapsed:.0f}s")
