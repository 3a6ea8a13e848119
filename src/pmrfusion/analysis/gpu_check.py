"""A short GPU benchmark: `sg-concat` training steps on CUB at batch 1024 in fp32 and bf16, and
AV-MNIST trained end to end for one epoch; samples/s and peak GPU memory
(`torch.cuda.max_memory_allocated`). Needs CUDA: `require_cuda` refuses in one line without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from pmrfusion.bench.runner import fit_method, prepare_seed
from pmrfusion.data.loaders import load_dataset
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import build_method
from pmrfusion.precision import autocast, grad_scaler
from pmrfusion.train.trainer import TrainConfig, build_optimizers, optimizer_step, total_loss
from pmrfusion.types import Batch

CUB_BATCH = 1024
CUB_STEPS = 50  # timed steps after 5 warm-up steps


@dataclass(frozen=True)
class GpuFigure:
    what: str
    precision: str
    samples_per_second: float
    peak_memory_mib: float


def require_cuda(command: str = "gpu-check") -> torch.device:
    if not torch.cuda.is_available():
        raise PMRFusionError(f"`{command}` needs CUDA, and torch sees no CUDA device on this machine")
    return torch.device("cuda")


def _peak_mib() -> float:
    return torch.cuda.max_memory_allocated() / 2**20


def cub_steps(precision: str, data_root: str | None = None, steps: int = CUB_STEPS) -> GpuFigure:
    """Training steps of sg-concat on a batch of 1024 CUB rows (drawn with replacement)."""
    device = require_cuda()
    data = load_dataset("cub", data_root)
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(0, data.num_samples, (CUB_BATCH,), generator=gen).numpy()
    feats, labels = data.take(rows)
    batch = Batch({m: torch.from_numpy(x).to(device) for m, x in feats.items()},
                  torch.ones(CUB_BATCH, len(feats), dtype=torch.bool, device=device),
                  torch.from_numpy(labels).long().to(device),
                  torch.arange(CUB_BATCH, device=device))  # fmt: skip
    torch.manual_seed(0)
    model = build_method("sg-concat", data.dims, data.num_classes).to(device)
    opts = build_optimizers(model, TrainConfig())
    scaler = grad_scaler(device, precision)
    torch.cuda.reset_peak_memory_stats()
    for i in range(5 + steps):
        if i == 5:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast(device, precision):
            loss, _ = total_loss(model, batch)
        optimizer_step(loss, opts, scaler)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    what = f"sg-concat on CUB, batch {CUB_BATCH}"
    return GpuFigure(what, precision, steps * CUB_BATCH / seconds, _peak_mib())


def avmnist_epoch(precision: str = "32", data_root: str | None = None) -> GpuFigure:
    """concat trained end to end on AV-MNIST for one epoch (loader, encoders, validation)."""
    require_cuda()
    data = load_dataset("avmnist", data_root)
    prepared = prepare_seed(data, 0)
    tc = replace(TrainConfig(), epochs=1, device="cuda", precision=precision, quiet=True)
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fit_method("concat", prepared, 0, {}, tc)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return GpuFigure("concat end to end on AV-MNIST, 1 epoch", precision, len(prepared.train) / seconds,
                     _peak_mib())  # fmt: skip


def gpu_figures(data_root: str | None = None) -> list[GpuFigure]:
    return [cub_steps("32", data_root), cub_steps("bf16", data_root), avmnist_epoch("32", data_root)]


def figures_page(figures: list[GpuFigure], tests_summary: str) -> str:
    lines = ["# GPU check", "", f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}.", "",
             f"GPU-marked tests: {tests_summary}", "",
             "| benchmark | precision | samples/s | peak GPU memory (MiB) |", "|---|---|---|---|",
             *(f"| {f.what} | {f.precision} | {f.samples_per_second:.0f} | {f.peak_memory_mib:.0f} |"
               for f in figures),
             "", "Made by `pmrfusion gpu-check --out DIR` (`pmrfusion.analysis.gpu_check`).", ""]  # fmt: skip
    return "\n".join(lines)


__all__ = ["GpuFigure", "avmnist_epoch", "cub_steps", "figures_page", "gpu_figures", "require_cuda"]
