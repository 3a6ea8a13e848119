"""DistributedDataParallel plumbing for `torchrun --nproc_per_node N -m pmrfusion train ...`.

Design (what makes an N-process run equal a 1-process run up to float error):
- every rank draws the same per-epoch permutation from the same seeded generator and takes
  a strided shard of each *global* batch (`rows[rank::world]`, the DistributedSampler
  partition applied per batch), so `TrainConfig.batch_size` is the global batch size;
- each rank's loss is rescaled by `world * len(shard) / len(batch)` before backward, so that
  DDP's gradient *average* equals the gradient of the full-batch mean loss even when the last
  batch does not split evenly (exact for per-sample-mean losses such as the task
  cross-entropy; batch-level auxiliary losses are computed per shard);
- a global batch smaller than the world size is skipped on every rank (no empty shards);
- validation runs on the full validation split on every rank, so early-stopping decisions
  agree without communication; logging and checkpointing happen on rank 0 only.
Backend: gloo on CPU, nccl when CUDA is available (one device per local rank).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from pmrfusion.errors import PMRFusionError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment says this process is one of several (torchrun sets these)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def refuse_under_torchrun(command: str) -> None:
    """One error line when a grid command is started by torchrun (every rank would run the whole
    grid and write the same folder): DDP is for `train`; grids run cells in parallel themselves."""
    if launched_by_torchrun():
        raise PMRFusionError(
            f"`{command}` does not run under torchrun (each rank would run every cell and write the same "
            "files): run it in one process (`suite --jobs N` runs cells in parallel) or use "
            "`torchrun ... -m pmrfusion train` for one distributed model"
        )


def current() -> DistContext | None:
    """The active multi-process context, or None in a plain single-process run."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
    return DistContext(dist.get_rank(), dist.get_world_size(), device)


def is_main_process() -> bool:
    ctx = current()
    return ctx is None or ctx.is_main


@contextlib.contextmanager
def distributed_session(backend: str | None = None) -> Iterator[DistContext | None]:
    """Initialise the process group from torchrun's environment; a no-op in a single process."""
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        yield current()
        return
    if not dist.is_available():
        raise PMRFusionError("this PyTorch build has no torch.distributed")
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise PMRFusionError(f"WORLD_SIZE > 1 but ${key} is not set: launch with torchrun")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise PMRFusionError(f"local rank {local} but only {torch.cuda.device_count()} CUDA devices")
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    try:
        yield current()
    finally:
        with contextlib.suppress(Exception):
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, ctx: DistContext) -> nn.Module:
    """The model wrapped in DistributedDataParallel (parameters broadcast from rank 0)."""
    from torch.nn.parallel import DistributedDataParallel

    model.to(ctx.device)
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def all_mean(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average a dict of floats over ranks (for logging the epoch's losses)."""
    if not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    t /= ctx.world_size
    return dict(zip(keys, t.cpu().tolist()))


__all__ = [
    "DistContext",
    "all_mean",
    "current",
    "distributed_session",
    "is_main_process",
    "launched_by_torchrun",
    "wrap",
]
