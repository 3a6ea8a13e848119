"""The trainer's DataLoader path: raw splits streamed in batches (lazy decoding, workers).

Single process: a `RandomSampler` seeded by `TrainConfig.seed` (a new permutation per epoch,
the same sequence for the same seed). Under torchrun: a `DistributedSampler` (seeded,
`set_epoch` each epoch) gives each rank `batch_size // world` rows per step, so
`TrainConfig.batch_size` stays the global batch; the sampler pads every rank to the same
length, so the ranks' mean losses average to the global mean and no rescaling is needed.
Missing-modality augmentation marks modalities absent in `present`; the composed model then
zeroes their encoder outputs (raw inputs are left as they are).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from pmrfusion.data.raw import RawSplit
from pmrfusion.types import Batch


def train_loader(data: RawSplit, cfg, ctx) -> DataLoader:
    """The training DataLoader of a raw split (seeded shuffling; DistributedSampler under DDP)."""
    if ctx is None:
        return data.loader(cfg.batch_size, shuffle_seed=cfg.seed)
    sampler = DistributedSampler(
        data.dataset(), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed
    )
    return data.loader(max(1, cfg.batch_size // ctx.world_size), sampler=sampler)


def _to(batch: Batch, device: torch.device) -> Batch:
    if device.type == "cpu":
        return batch
    return Batch(
        {m: x.to(device, non_blocking=True) for m, x in batch.features.items()},
        batch.present.to(device), batch.labels.to(device), batch.index.to(device),
    )  # fmt: skip


def streamed_batches(
    data: RawSplit, loader: DataLoader, epoch: int, drop_gen: torch.Generator, cfg, ctx,
    device: torch.device | None = None,
) -> Iterator[tuple[Batch, float]]:  # fmt: skip
    """One epoch of (batch, loss factor 1.0) from the loader."""
    from pmrfusion.train.trainer import modality_keep_mask

    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    for batch in data.batches(loader):
        n = len(batch.labels)
        if n < 2 and len(data) > 1:
            continue
        if cfg.modality_dropout > 0:
            keep = modality_keep_mask(n, len(data.modalities), cfg.modality_dropout, drop_gen)
            batch = Batch(batch.features, keep, batch.labels, batch.index)
        yield _to(batch, device or torch.device("cpu")), 1.0


@torch.no_grad()
def predict_streamed(model: torch.nn.Module, split: RawSplit) -> Tensor:
    """Logits for every row of a raw split, in eval mode, in row order (returned on CPU)."""
    model.eval()
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    loader = getattr(split, "_eval_loader", None)
    if loader is None:
        loader = split.loader(split.loader_settings.eval_batch_size)
        split._eval_loader = loader  # keep its persistent workers for the next validation
    outs = [model(_to(b, device).features, None).logits.cpu() for b in split.batches(loader)]
    return torch.cat(outs)


__all__ = ["predict_streamed", "streamed_batches", "train_loader"]
