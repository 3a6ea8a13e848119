"""Training throughput, inference latency, and achieved FLOP/s against the matmul roofline."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from pmrfusion.methods.base import FusionModel
from pmrfusion.train.trainer import TrainConfig, build_optimizers, optimizer_step, total_loss
from pmrfusion.types import Batch


@dataclass
class StepCost:
    flops: int  # forward + backward FLOPs of one training step
    seconds: float  # median wall time of one full step (forward, backward, optimizer)
    batch_size: int

    @property
    def flops_per_second(self) -> float:
        return self.flops / self.seconds

    @property
    def samples_per_second(self) -> float:
        return self.batch_size / self.seconds


def _step(model: FusionModel, opts, batch: Batch) -> None:
    loss, _ = total_loss(model, batch)  # the trainer's own loss: task + weighted auxiliaries
    optimizer_step(loss, opts)


def training_step_cost(
    model: FusionModel,
    feats: dict[str, torch.Tensor],
    labels: torch.Tensor,
    repeats: int = 20,
    kernel: str = "auto",
) -> StepCost:
    """FLOPs (torch.utils.flop_counter) and median time of a training step on this batch, the
    optimizers running `kernel` (`pmrfusion.optim`)."""
    model.train()
    opts = build_optimizers(model, TrainConfig(optimizer_kernel=kernel))
    n = int(labels.shape[0])
    batch = Batch(feats, torch.ones(n, len(feats), dtype=torch.bool), labels, torch.arange(n))
    with FlopCounterMode(display=False) as counter:
        _step(model, opts, batch)
    for _ in range(3):
        _step(model, opts, batch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _step(model, opts, batch)
        times.append(time.perf_counter() - t0)
    return StepCost(int(counter.get_total_flops()), statistics.median(times), int(labels.shape[0]))


@torch.no_grad()
def inference_latency(model: FusionModel, feats: dict[str, torch.Tensor], repeats: int = 50) -> float:
    """Median seconds of one eval-mode forward pass on `feats`."""
    model.eval()
    for _ in range(3):
        model(feats, None)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(feats, None)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_roofline(size: int = 2048, repeats: int = 10) -> float:
    """Dense float32 FLOP/s that torch.matmul reaches here on size x size matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times)
