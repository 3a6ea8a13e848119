"""`pmrfusion` command line: datasets, methods, train, eval, bench (and --suite), report."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from pmrfusion.bench.runner import RunSpec, evaluate, fit_method, run_grid
from pmrfusion.bench.store import (
    group_mean,
    is_keep_one,
    is_leave_one_out,
    summarize,
    summary_grid,
    write_results,
)
from pmrfusion.commands import register_all
from pmrfusion.data.loaders import available_datasets, load_dataset
from pmrfusion.data.tensors import prepare, to_split
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import available_protocols, check_protocol
from pmrfusion.eval.regression_metrics import primary_metric
from pmrfusion.methods import available_methods, method_config
from pmrfusion.train import distributed
from pmrfusion.train.checkpoint import load_checkpoint, save_checkpoint
from pmrfusion.train.trainer import TrainConfig

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
console = Console()

DataRoot = Annotated[
    Path | None, typer.Option("--data-root", help="folder with cub/, pie/, ... (env PMRFUSION_DATA)")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="method option key=value (repeatable), e.g. n=8")
]
LabelNoise = Annotated[
    float, typer.Option("--label-noise", help="fraction of training labels flipped (seeded), 0..1")
]
ModalityDropout = Annotated[
    float,
    typer.Option(
        "--modality-dropout",
        help="training-time missing-modality augmentation: P(a modality of a sample is zeroed), 0..1",
    ),
]


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise PMRFusionError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out


def split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def train_config(
    epochs: int,
    lr: float,
    batch_size: int,
    quiet: bool,
    label_noise: float = 0.0,
    modality_dropout: float = 0.0,
) -> TrainConfig:
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise PMRFusionError("epochs and batch size must be >= 1 and lr > 0")
    if not 0.0 <= label_noise <= 1.0:
        raise PMRFusionError(f"--label-noise must be in [0, 1], got {label_noise}")
    if not 0.0 <= modality_dropout < 1.0:
        raise PMRFusionError(f"--modality-dropout must be in [0, 1), got {modality_dropout}")
    return TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        quiet=quiet,
        label_noise=label_noise,
        modality_dropout=modality_dropout,
    )


@app.command()
def datasets(data_root: DataRoot = None) -> None:
    """List the built-in datasets with sizes, modalities and dims."""
    table = Table("name", "samples", "classes", "modalities (dim)", "split", "description")
    for info, data in available_datasets(data_root):
        if isinstance(data, str):
            table.add_row(info.name, "-", "-", f"[dim]unavailable: {data}[/dim]", "-", info.description)
        else:
            dims = ", ".join(f"{m} {d}" for m, d in data.dims.items())
            split = "/".join(str(len(v)) for v in data.splits.values())
            table.add_row(
                info.name, str(data.num_samples), str(data.num_classes), dims, split, info.description
            )
    console.print(table)


@app.command()
def methods() -> None:
    """List the registered methods and their options."""
    import dataclasses

    table = Table("method", "description", "options (defaults)")
    for name, spec in sorted(available_methods().items()):
        opts = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(spec.config_cls))
        table.add_row(name, spec.description, opts)
    console.print(table)


@app.command("train")
def train_cmd(
    dataset: Annotated[str, typer.Option(help="built-in name or path to .npz/.mat")] = "handwritten",
    method: Annotated[str, typer.Option(help="registered method name")] = "sg-concat",
    seed: int = 0,
    epochs: int = 150,
    lr: float = 1e-3,
    batch_size: int = 64,
    set_: SetOpt = None,
    save: Annotated[Path | None, typer.Option(help="write a checkpoint here")] = None,
    data_root: DataRoot = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    label_noise: LabelNoise = 0.0,
    modality_dropout: ModalityDropout = 0.0,
) -> None:
    """Train one method on one dataset; report validation and clean test accuracy.

    Under `torchrun --nproc_per_node N -m pmrfusion train ...` it trains with
    DistributedDataParallel (--batch-size is the global batch); rank 0 logs and saves.
    """
    overrides = parse_sets(set_)
    method_config(method, **overrides)
    tc = train_config(epochs, lr, batch_size, quiet, label_noise, modality_dropout)
    data = load_dataset(dataset, data_root)
    prepared = prepare(data, seed=seed)
    with distributed.distributed_session() as ctx:
        model, result = fit_method(method, prepared, seed, overrides, tc)
        if ctx is not None and not ctx.is_main:
            return
        recs = evaluate(model, prepared, ["clean"], seed, {"dataset": data.name, "method": method})
        metric = primary_metric(recs)
        acc = next(r["value"] for r in recs if r["metric"] == metric)
        where = f" ({ctx.world_size} processes, {ctx.device.type})" if ctx is not None else ""
        flipped = f", {result.flipped_labels} training labels flipped" if result.flipped_labels else ""
        console.print(
            f"{method} on {data.name}{where}: best epoch {result.best_epoch}/{result.epochs_run}, "
            f"val {'accuracy' if metric == 'accuracy' else 'mae'} "
            f"{result.best_val_accuracy if metric == 'accuracy' else result.best_val_mae:.4f}, "
            f"test {metric} {acc:.4f}{flipped}"
        )
        if save is not None:
            save_checkpoint(
                save, model, method, overrides, prepared.dims, prepared.num_classes, prepared.scaler, dataset
            )
            console.print(f"checkpoint written to {save}")


@app.command("eval")
def eval_cmd(
    load: Annotated[Path, typer.Option(help="checkpoint written by `train --save`")],
    dataset: Annotated[str | None, typer.Option(help="override the checkpoint's dataset")] = None,
    protocols: str = "clean,missing,gaussian",
    seed: int = 0,
    data_root: DataRoot = None,
) -> None:
    """Evaluate a checkpoint under robustness protocols on the test split."""
    protos = split_list(protocols)
    for p in protos:
        check_protocol(p)
    model, meta, scaler = load_checkpoint(load)
    data = load_dataset(dataset or meta["dataset"], data_root)
    if data.dims != meta["dims"]:
        raise PMRFusionError(f"dataset dims {data.dims} do not match the checkpoint's {meta['dims']}")
    if set(scaler.mean) != set(data.modalities):
        raise PMRFusionError(f"dataset modalities {data.modalities} do not match the checkpoint's")
    prepared = prepare(data, seed=seed)
    # scale with the checkpoint's statistics; train min/max (salt_pepper, conflict) come from
    # the training rows of this seed's split, scaled the same way
    prepared.train = to_split(data, prepared.train.index.numpy(), scaler)
    prepared.test = to_split(data, data.split("test"), scaler)
    recs = evaluate(model, prepared, protos, seed, {"dataset": data.name, "method": meta["method"]})
    _print_summary(recs, len(data.modalities))


def _print_summary(records: list[dict], num_modalities: int) -> None:
    metric = primary_metric(records)
    methods_, grid = summary_grid(summarize(records, metric))
    table = Table("condition", *methods_, title=f"{metric}: mean ± std (worst seed)")
    for _, cond, vals in grid:
        table.add_row(cond, *vals)
    if any(r["protocol"] == "missing" for r in records):
        loo = [
            group_mean(records, m, lambda r: is_leave_one_out(r, num_modalities), metric) for m in methods_
        ]
        table.add_row("[b]mean leave-one-out[/b]", *[f"{v:.4f}" for v in loo])
        if num_modalities > 2:
            keep = [group_mean(records, m, is_keep_one, metric) for m in methods_]
            table.add_row("[b]mean keep-one[/b]", *[f"{v:.4f}" for v in keep])
    console.print(table)


@app.command()
def bench(
    dataset: Annotated[str, typer.Option(help="built-in name or path to .npz/.mat")] = "handwritten",
    methods_: Annotated[
        str | None,
        typer.Option("--methods", help="comma-separated (default concat,late,sg-concat; suite: all)"),
    ] = None,
    protocols: Annotated[
        str | None, typer.Option(help="comma-separated (default clean,missing,gaussian; suite: all)")
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="number of seeds 0..seeds-1 (3; suite: 5)")] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/bench"),
    epochs: int = 150,
    lr: float = 1e-3,
    batch_size: int = 64,
    set_: SetOpt = None,
    data_root: DataRoot = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    label_noise: LabelNoise = 0.0,
    modality_dropout: ModalityDropout = 0.0,
    task: Annotated[
        str, typer.Option(help="classification, or retrieval (contrastive training, mAP/R@k, CCA beside)")
    ] = "classification",
    suite: Annotated[
        str | None,
        typer.Option(help="run a named suite ('paper': every dataset x method x protocol, resumable)"),
    ] = None,
    datasets_: Annotated[
        str | None, typer.Option("--datasets", help="suite only: comma-separated datasets to keep")
    ] = None,
    jobs: Annotated[int, typer.Option(help="suite only: cells run in N worker processes")] = 1,
) -> None:
    """Train methods x seeds, evaluate every protocol; print a summary and write DIR/results.*.

    With --suite paper: every available dataset x method x seed with every protocol; one
    file per finished cell under DIR/cells/ so an interrupted run resumes where it stopped.
    """
    if task == "retrieval":
        from pmrfusion.commands.retrieval import run_command

        run_command(
            dataset,
            methods_ or "cmmp,rg-cmmp,sg-cmmp",
            seeds or 5,
            out,
            epochs=epochs,
            lr=lr,
            data_root=data_root,
        )
        return
    if task != "classification":
        raise PMRFusionError(f"unknown task '{task}': use 'classification' or 'retrieval'")
    if suite is not None:
        _run_suite(
            suite, datasets_, methods_, protocols, seeds, out, jobs, data_root, quiet, set_,
            train_config(epochs, lr, batch_size, True, label_noise, modality_dropout),
        )  # fmt: skip
        return
    if datasets_ is not None or jobs != 1:
        raise PMRFusionError("--datasets and --jobs apply to --suite runs only")
    seeds = 3 if seeds is None else seeds
    if seeds < 1:
        raise PMRFusionError("--seeds must be >= 1")
    spec = RunSpec(
        methods=split_list(methods_ or "concat,late,sg-concat"),
        protocols=split_list(protocols or "clean,missing,gaussian"),
        seeds=list(range(seeds)),
        method_overrides=parse_sets(set_),
        train=train_config(epochs, lr, batch_size, True, label_noise, modality_dropout),
    )
    for m in spec.methods:
        method_config(m)
    data = load_dataset(dataset, data_root)
    console.print(data.summary())
    for note in data.notes:
        console.print(f"[dim]note: {note}[/dim]")
    start = time.perf_counter()
    total = len(spec.methods) * len(spec.seeds)
    if quiet:
        records = run_grid(data, spec)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("bench", total=total)

            def on_cell(method: str, seed: int, seconds: float) -> None:
                progress.update(task, advance=1, description=f"{method} seed {seed} ({seconds:.1f}s)")

            records = run_grid(data, spec, on_cell)
    header = (
        f"# {data.name}: {', '.join(spec.methods)}; {len(spec.seeds)} seeds; "
        f"protocols {', '.join(spec.protocols)}"
    )
    write_results(out, records, header)
    _print_summary(records, len(data.modalities))
    elapsed = time.perf_counter() - start
    console.print(f"{len(records)} records written to {out}/results.json (.csv, .md) in {elapsed:.0f}s")


def _run_suite(
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
) -> None:
    from pmrfusion.bench.suite import available, run_suite, suite_spec

    protos = split_list(protocols) if protocols else available_protocols()
    for p in protos:
        check_protocol(p)
    spec = suite_spec(
        suite,
        split_list(datasets_) if datasets_ else None,
        split_list(methods_) if methods_ else None,
        seeds,
        protocols=protos,
        method_overrides=parse_sets(set_),
        train=tc,
        data_root=str(data_root) if data_root is not None else None,
    )
    for m in spec.methods:
        method_config(m)
    spec.datasets, notes = available(spec.datasets, spec.data_root)
    for note in notes:
        console.print(f"[yellow]note: {note}[/yellow]")
    if not spec.datasets:
        raise PMRFusionError("no dataset of the suite is available (see the notes above)")
    console.print(
        f"suite '{suite}': {len(spec.datasets)} datasets x {len(spec.methods)} methods x "
        f"{len(spec.seeds)} seeds = {len(spec.cells())} cells; protocols {', '.join(spec.protocols)}; "
        f"{jobs} job(s); output {out}"
    )
    start = time.perf_counter()
    if quiet:
        result = run_suite(spec, out, jobs)
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("cells", total=len(spec.cells()))

            def on_start(done: int, total: int) -> None:
                progress.update(task, completed=done, description=f"cells ({done} done before)")

            def on_cell(cell, payload: dict, done: int, total: int) -> None:
                status = "" if payload["status"] == "ok" else " [yellow]skipped[/yellow]"
                progress.update(
                    task, completed=done, description=f"{cell} ({payload['seconds']:.1f}s){status}"
                )

            result = run_suite(spec, out, jobs, on_cell, on_start)
    for note in result.notes:
        console.print(f"[yellow]note: {note}[/yellow]")
    elapsed = time.perf_counter() - start
    console.print(
        f"{result.ran} cells run, {result.reused} reused; {len(result.records)} records in "
        f"{out}/results.json (.csv, .md) in {elapsed:.0f}s; `pmrfusion report {out}` for the report"
    )


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="a bench or suite output folder (results.json)")],
    benchmarks: Annotated[
        Path | None, typer.Option(help="also write the report here, figure links rewritten (BENCHMARKS.md)")
    ] = None,
    append: Annotated[
        list[Path] | None,
        typer.Option(help="markdown page appended to --benchmarks, headings one level down (repeatable)"),
    ] = None,
) -> None:
    """Write DIR/report.md with PNG figures from DIR/results.json."""
    from pmrfusion.bench.report import demote_headings, relink, write_report
    from pmrfusion.bench.store import atomic_write_text

    for extra in append or []:
        if not extra.is_file():
            raise PMRFusionError(f"file to append not found: {extra}")
    path = write_report(directory)
    console.print(f"report written to {path}")
    if benchmarks is not None:
        dest = benchmarks.resolve().parent
        parts = [relink(path.read_text(), path.resolve().parent, dest).rstrip() + "\n"]
        for extra in append or []:
            text = relink(extra.read_text(), extra.resolve().parent, dest)
            parts.append(demote_headings(text).rstrip() + "\n")
        atomic_write_text(benchmarks, "\n".join(parts))
        console.print(f"benchmarks written to {benchmarks}")


register_all(app)


def main() -> None:
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    try:
        app()
    except PMRFusionError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
