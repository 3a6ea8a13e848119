"""`pmrfusion analyze-encoders probes|gradcos` and `pmrfusion speed-encoders`: analyses of the
encoders of raw-input models (CSV files in --out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app
from pmrfusion.cli.options import DataRoot, split_list

ENCODER_ANALYSES = ("probes", "gradcos")


Overwrite = Annotated[bool, typer.Option(help="replace the CSV files this command finds in --out")]


def _refuse_existing(out: Path, names: list[str], overwrite: bool) -> None:
    from pmrfusion.errors import PMRFusionError

    found = [n for n in names if (out / n).exists()]
    if found and not overwrite:
        raise PMRFusionError(f"{out} already holds {', '.join(found)}: pass --overwrite to replace it")


def _print_row(row: dict) -> None:
    print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)


@app.command("analyze-encoders")
def analyze_encoders(
    kind: Annotated[
        str, typer.Argument(help="probes (linear probes of V_m) or gradcos (task vs preservation)")
    ],
    dataset: Annotated[str, typer.Option(help="raw-input dataset: built-in name or manifest")] = "avmnist",
    out: Annotated[Path, typer.Option(help="output folder (probes.csv or gradcos.csv)")] = Path(
        "runs/encoders"
    ),
    methods: Annotated[
        str | None,
        typer.Option(
            help="comma-separated (default: probes concat,late,sg-concat,"
            "rg-concat; gradcos sg-concat,rg-concat)"
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="probes: number of seeds (0..seeds-1)")] = 2,
    seed: Annotated[int, typer.Option(help="gradcos: the seed")] = 0,
    epochs: Annotated[int, typer.Option(help="training epochs (probes default 6, gradcos 3)")] = 0,
    every: Annotated[int, typer.Option(help="gradcos: measure every this many steps")] = 10,
    overwrite: Overwrite = False,
    data_root: DataRoot = None,
) -> None:
    """Linear probes of the encoders inside end-to-end models vs a unimodal encoder (PMR Tables 5-6), or
    the gradient cosine between the task and preservation losses at each V_m over training (PMR Fig. 4)."""
    import torch

    from pmrfusion.analysis.encoder_analyses import encoder_gradient_cosine, encoder_probes
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.errors import PMRFusionError
    from pmrfusion.paths import atomic_write_csv, check_output_dir
    from pmrfusion.train.trainer import TrainConfig, seed_range

    if kind not in ENCODER_ANALYSES:
        raise PMRFusionError(f"unknown encoder analysis '{kind}': use one of {', '.join(ENCODER_ANALYSES)}")
    if seeds < 1 or epochs < 0 or seed < 0:
        raise PMRFusionError("--seeds must be >= 1, --seed and --epochs >= 0")
    check_output_dir(out, "--out")
    _refuse_existing(out, [f"{kind}.csv"], overwrite)
    torch.set_num_threads(1)
    data = load_dataset(dataset, data_root)
    if kind == "probes":
        names = split_list(methods or "concat,late,sg-concat,rg-concat")
        tc = TrainConfig(epochs=epochs or 6, batch_size=64, lr=1e-3)
        rows = encoder_probes(data, names, seed_range(seeds), tc, report=_print_row)
    else:
        names = split_list(methods or "sg-concat,rg-concat")
        rows = encoder_gradient_cosine(data, names, seed, epochs or 3, every, report=_print_row)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(out / f"{kind}.csv", rows)
    print(f"written {out / f'{kind}.csv'}")


@app.command("speed-encoders")
def speed_encoders(
    dataset: Annotated[
        str, typer.Option(help="avmnist (end-to-end methods) or mosi (the MiniLM text encoder)")
    ] = "avmnist",
    out: Annotated[Path, typer.Option(help="output folder (speed.csv, flops.csv, memory.csv)")] = Path(
        "runs/speed-encoders"
    ),
    steps: Annotated[int, typer.Option(help="avmnist: timed training steps per method")] = 40,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 64,
    rows: Annotated[
        int, typer.Option(help="avmnist: rows of the generated manifest for the memory probe (0: skip it)")
    ] = 100_000,
    threads: Annotated[int, typer.Option(help="torch threads")] = 1,
    overwrite: Overwrite = False,
    data_root: DataRoot = None,
) -> None:
    """Raw-input training speed: AV-MNIST samples/s per method, data-wait share, encoder FLOP/s vs the
    matmul roofline, peak memory of one epoch over a large manifest; or MiniLM sentences/s (mosi)."""
    import torch

    from pmrfusion.analysis import raw_speed
    from pmrfusion.errors import PMRFusionError
    from pmrfusion.paths import atomic_write_csv, check_output_dir

    if dataset not in ("avmnist", "mosi"):
        raise PMRFusionError(f"--dataset must be avmnist or mosi, got {dataset!r}")
    if steps < 1 or batch_size < 1 or rows < 0 or threads < 1:
        raise PMRFusionError("--steps, --batch-size and --threads must be >= 1, --rows >= 0")
    check_output_dir(out, "--out")
    _refuse_existing(
        out, ["speed.csv"] if dataset == "mosi" else ["speed.csv", "flops.csv", "memory.csv"], overwrite
    )
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    if dataset == "mosi":
        found = raw_speed.mosi_text_speed(data_root, threads, batch_size)
        for row in found:
            _print_row(row)
        atomic_write_csv(out / "speed.csv", found)
        print(f"written {out / 'speed.csv'}")
        return
    from pmrfusion.bench.runner import prepare_seed
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.modules.composition import EncoderConfig

    data = load_dataset("avmnist", data_root)
    cfg = EncoderConfig()
    prepared = prepare_seed(data, 0, 0.15, cfg)
    atomic_write_csv(out / "speed.csv", raw_speed.end_to_end_speed(
        prepared, raw_speed.END_TO_END_METHODS, cfg, batch_size, steps, report=_print_row))  # fmt: skip
    flops = raw_speed.encoder_flops(prepared, cfg)
    _print_row(flops)
    atomic_write_csv(out / "flops.csv", [flops])
    if rows:
        memory = raw_speed.epoch_memory(data, rows, out)
        _print_row(memory)
        atomic_write_csv(out / "memory.csv", [memory])
    print(f"written {out}/speed.csv, flops.csv" + (", memory.csv" if rows else ""))
