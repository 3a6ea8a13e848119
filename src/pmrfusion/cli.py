"""`pmrfusion` command line: datasets, methods, train, eval, bench."""

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
from pmrfusion.bench.store import group_mean, is_keep_one, is_leave_one_out, summarize, write_results
from pmrfusion.commands import register_all
from pmrfusion.data.loaders import available_datasets, load_dataset
from pmrfusion.data.tensors import prepare, to_split
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import check_protocol
from pmrfusion.methods import available_methods, method_config
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


def train_config(epochs: int, lr: float, batch_size: int, quiet: bool) -> TrainConfig:
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise PMRFusionError("epochs and batch size must be >= 1 and lr > 0")
    return TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, quiet=quiet)


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
) -> None:
    """Train one method on one dataset; report validation and clean test accuracy."""
    overrides = parse_sets(set_)
    method_config(method, **overrides)
    data = load_dataset(dataset, data_root)
    prepared = prepare(data, seed=seed)
    model, result = fit_method(method, prepared, seed, overrides, train_config(epochs, lr, batch_size, quiet))
    recs = evaluate(model, prepared, ["clean"], seed, {"dataset": data.name, "method": method})
    acc = next(r["value"] for r in recs if r["metric"] == "accuracy")
    console.print(
        f"{method} on {data.name}: best epoch {result.best_epoch}/{result.epochs_run}, "
        f"val accuracy {result.best_val_accuracy:.4f}, test accuracy {acc:.4f}"
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
    prepared = prepare(data, seed=seed)
    prepared.test = to_split(data, data.split("test"), scaler)
    recs = evaluate(model, prepared, protos, seed, {"dataset": data.name, "method": meta["method"]})
    _print_summary(recs, len(data.modalities))


def _print_summary(records: list[dict], num_modalities: int) -> None:
    rows = summarize(records)
    methods_ = list(dict.fromkeys(r.method for r in rows))
    table = Table("condition", *methods_, title="accuracy: mean ± std (worst seed)")
    conds = list(dict.fromkeys((r.dataset, r.protocol, r.condition) for r in rows))
    cell = {(r.dataset, r.protocol, r.condition, r.method): r for r in rows}
    for ds, proto, cond in conds:
        vals = []
        for m in methods_:
            r = cell.get((ds, proto, cond, m))
            vals.append(f"{r.mean:.4f} ± {r.std:.4f} ({r.worst:.4f})" if r else "")
        table.add_row(cond, *vals)
    if any(r["protocol"] == "missing" for r in records):
        loo = [group_mean(records, m, lambda r: is_leave_one_out(r, num_modalities)) for m in methods_]
        keep = [group_mean(records, m, is_keep_one) for m in methods_]
        table.add_row("[b]mean leave-one-out[/b]", *[f"{v:.4f}" for v in loo])
        if num_modalities > 2:
            table.add_row("[b]mean keep-one[/b]", *[f"{v:.4f}" for v in keep])
    console.print(table)


@app.command()
def bench(
    dataset: Annotated[str, typer.Option(help="built-in name or path to .npz/.mat")] = "handwritten",
    methods_: Annotated[str, typer.Option("--methods", help="comma-separated")] = "concat,late,sg-concat",
    protocols: Annotated[str, typer.Option(help="comma-separated")] = "clean,missing,gaussian",
    seeds: Annotated[int, typer.Option(help="number of seeds (0..seeds-1)")] = 3,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/bench"),
    epochs: int = 150,
    lr: float = 1e-3,
    batch_size: int = 64,
    set_: SetOpt = None,
    data_root: DataRoot = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Train methods x seeds, evaluate every protocol; print a summary and write DIR/results.*."""
    if seeds < 1:
        raise PMRFusionError("--seeds must be >= 1")
    spec = RunSpec(
        methods=split_list(methods_),
        protocols=split_list(protocols),
        seeds=list(range(seeds)),
        method_overrides=parse_sets(set_),
        train=train_config(epochs, lr, batch_size, True),
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
