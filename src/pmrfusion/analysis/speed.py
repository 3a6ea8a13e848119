"""Training throughput, inference latency and PMR's FLOP/s vs the matmul roofline, on CUB.

Started by `pmrfusion speed [--threads 2] [--methods concat,late,sg-concat,rg-concat]
[--kernel single,auto]`, which prints the markdown tables of results/speed/README.md (one
samples/s and roofline column pair per optimizer kernel: "single" is the trainer before fused
kernels, "auto" the trainer now).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence

import torch

from pmrfusion.analysis.throughput import inference_latency, matmul_roofline, training_step_cost
from pmrfusion.data.loaders import load_feature_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.methods import build_method
from pmrfusion.optim import check_kernel
from pmrfusion.train.trainer import seed_everything


def batch_of(split, size: int):
    rows = torch.arange(size) % len(split)
    return {m: x[rows] for m, x in split.features.items()}, split.labels[rows]


def speed_tables(
    methods: Sequence[str],
    dataset: str = "cub",
    threads: int = 2,
    print: Callable[..., None] = print,
    kernels: Sequence[str] = ("auto",),
) -> None:
    """Print the throughput/latency table (samples/s and fraction of the matmul roofline at batch 64
    for each optimizer kernel in `kernels`, e.g. ("single", "auto") for before/after) and the
    sg-concat FLOP/s vs roofline table over batch sizes, line by line."""
    for k in kernels:
        check_kernel(k)
    torch.set_num_threads(threads)
    data = prepare(load_feature_dataset(dataset, "speed"), 0.15, 0)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, threads {threads}"
    )
    print(f"dataset: {data.name} dims {data.dims}, {data.num_classes} classes\n")
    roof = matmul_roofline()
    print(f"matmul roofline (2048x2048 float32, same run): {roof / 1e9:.1f} GFLOP/s\n")

    per_kernel = [f"train samples/s, {k} | roofline, {k}" for k in kernels]
    print(f"| method | params | {' | '.join(per_kernel)} | latency batch 1 (ms) | latency test set (ms) |")
    print("|---|---|" + "---|---|" * len(kernels) + "---|---|")
    for name in methods:
        cells = []
        for kernel in kernels:
            seed_everything(0)
            model = build_method(name, data.dims, data.num_classes)
            feats, labels = batch_of(data.train, 64)
            cost = training_step_cost(model, feats, labels, kernel=kernel)
            cells.append(f"{cost.samples_per_second:,.0f} | {cost.flops_per_second / roof:.0%}")
        params = sum(p.numel() for p in model.parameters())
        one = {m: x[:1] for m, x in data.test.features.items()}
        lat1 = inference_latency(model, one) * 1e3
        lat_all = inference_latency(model, data.test.features) * 1e3
        print(f"| {name} | {params:,} | {' | '.join(cells)} | {lat1:.3f} | {lat_all:.2f} |")

    print(
        "\n| method | kernel | batch | FLOPs/step (fwd+bwd) | step time (ms) | achieved GFLOP/s "
        "| fraction of matmul roofline |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in ("sg-concat",):
        for kernel in kernels:
            for bs in (64, 256, 1024, 4096):
                seed_everything(0)
                model = build_method(name, data.dims, data.num_classes)
                feats, labels = batch_of(data.train, bs)
                cost = training_step_cost(model, feats, labels, repeats=10, kernel=kernel)
                print(
                    f"| {name} | {kernel} | {bs} | {cost.flops / 1e9:.2f} G | {cost.seconds * 1e3:.1f} | "
                    f"{cost.flops_per_second / 1e9:.1f} | {cost.flops_per_second / roof:.0%} |"
                )
