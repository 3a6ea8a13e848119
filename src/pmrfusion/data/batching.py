"""The one batching module: training epochs and evaluation chunks of every split kind.

A split (`TensorSplit`: features in memory; `RawSplit`: decoded by a DataLoader) makes the
epochs of one training run (`split.training_stream(...)`, a `BatchStream`: epoch k -> batches) and
evaluation batches
(`split.eval_batches()`); the trainer only sees `Batch`es and never asks which kind it has.

- In memory: one seeded permutation per epoch (`torch.randperm` from a generator seeded by the
  run's seed), batches of `batch_size` rows; under torchrun each rank takes its strided shard
  of every global batch and weights its mean loss by `shard_weight`.
- Streamed: a seeded `DataLoader` (a `DistributedSampler` under torchrun, `batch_size // world`
  rows per rank, `set_epoch` each epoch), its workers kept for the whole run.
- Missing-modality augmentation (`modality_keep_mask`): drawn per global batch, so every rank
  agrees; in-memory features of a dropped modality are replaced by the absent fill, raw inputs
  are left as they are (the encoded model zeroes their encoder outputs).
- Naturally missing modalities (`data.presence`): every batch's `present` is the data's presence
  of its rows AND the dropout mask, so a model sees one mask for both; in-memory features of an
  absent cell hold the absent fill.
A one-row batch is skipped (it only adds noise) unless the split has one row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from pmrfusion.data.absent import fill_absent
from pmrfusion.errors import PMRFusionError
from pmrfusion.types import Batch

MODALITY_DROPOUT_SALT = 7_927


def modality_keep_mask(n: int, num_modalities: int, p: float, gen: torch.Generator) -> Tensor:
    """(n, M) bool: each cell kept with probability 1 - p; a row with none kept keeps one at random."""
    if not 0.0 <= p < 1.0:
        raise PMRFusionError(f"modality dropout must be in [0, 1), got {p}")
    keep = torch.rand(n, num_modalities, generator=gen) >= p
    rescue = torch.randint(num_modalities, (n,), generator=gen)
    empty = ~keep.any(1)
    keep[empty, rescue[empty]] = True
    return keep


def dropout_generator(seed: int) -> torch.Generator:
    """The generator of a run's modality-dropout masks (kept apart from the batch order)."""
    return torch.Generator().manual_seed(seed * MODALITY_DROPOUT_SALT + 3)


def shard(rows: Tensor, rank: int, world_size: int) -> Tensor:
    """This rank's strided share of a global batch."""
    return rows[rank::world_size]


def shard_weight(shard_size: int, batch_size: int, world_size: int) -> float:
    """Loss factor that makes the ranks' mean losses average to the global batch mean."""
    return world_size * shard_size / batch_size


def batch_to(batch: Batch, device: torch.device, non_blocking: bool = False) -> Batch:
    """`batch` on `device` (itself on CPU); `non_blocking` copies overlap compute from pinned memory."""
    if device.type == "cpu":
        return batch

    def to(x: torch.Tensor) -> torch.Tensor:
        return x.to(device, non_blocking=non_blocking)

    return Batch({m: to(x) for m, x in batch.features.items()}, to(batch.present), to(batch.labels),
                 to(batch.index))  # fmt: skip


def with_dropped(batch: Batch, fill: dict[str, Tensor] | None) -> Batch:
    """Feed modalities marked absent as `fill` (in-memory features only)."""
    if fill is None:
        return batch
    return Batch(fill_absent(batch.features, batch.present, fill), batch.present, batch.labels, batch.index)


# The training batches of one run: called with epoch k (1-based), yields (batch, loss factor).
BatchStream = Callable[[int], Iterator[tuple[Batch, float]]]


def in_memory_stream(
    split: Any, batch_size: int, seed: int, dropout: float, fill: dict[str, Tensor] | None, ctx: Any
) -> BatchStream:
    """Epochs of a `TensorSplit` (`split.batch(rows, present)`); `ctx` is the DDP context or None."""
    gen = torch.Generator().manual_seed(seed)
    drop_gen = dropout_generator(seed)
    num_modalities = len(split.modalities)

    def epoch(_: int) -> Iterator[tuple[Batch, float]]:
        perm = torch.randperm(len(split), generator=gen)
        for s in range(0, len(perm), batch_size):
            rows = perm[s : s + batch_size]
            if len(rows) < 2 and len(perm) > 1:
                continue
            keep = None
            if dropout > 0:  # drawn for the global batch, so every rank agrees
                keep = modality_keep_mask(len(rows), num_modalities, dropout, drop_gen)
            if ctx is None:
                yield with_dropped(split.batch(rows, keep), fill), 1.0
                continue
            if len(rows) < ctx.world_size:
                continue  # every rank skips it: no empty shards
            mine = shard(rows, ctx.rank, ctx.world_size)
            mine_keep = shard(keep, ctx.rank, ctx.world_size) if keep is not None else None
            batch = with_dropped(split.batch(mine, mine_keep), fill)
            yield batch, shard_weight(len(mine), len(rows), ctx.world_size)

    return epoch


def loader_stream(split: Any, batch_size: int, seed: int, dropout: float, ctx: Any) -> BatchStream:
    """Epochs of a `RawSplit` through one seeded DataLoader kept for the run."""
    drop_gen = dropout_generator(seed)
    if ctx is None:
        loader = split.loader(batch_size, shuffle_seed=seed)
    else:
        sampler = DistributedSampler(
            split.dataset(), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed
        )
        loader = split.loader(max(1, batch_size // ctx.world_size), sampler=sampler)
    num_modalities = len(split.modalities)

    def epoch(k: int) -> Iterator[tuple[Batch, float]]:
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(k)
        for batch in split.batches(loader):
            n = len(batch.labels)
            if n < 2 and len(split) > 1:
                continue
            if dropout > 0:
                keep = modality_keep_mask(n, num_modalities, dropout, drop_gen)
                batch = Batch(batch.features, keep & batch.present, batch.labels, batch.index)
            yield batch, 1.0

    return epoch


def loader_batches(split: Any, loader: DataLoader) -> Iterator[Batch]:
    """(features, labels, rows) triples of a raw DataLoader as `Batch`es, present as the data says
    (`split.presence_rows(rows)`)."""
    for feats, labels, rows in loader:
        yield Batch(feats, split.presence_rows(rows), labels, rows)


__all__ = [
    "BatchStream",
    "batch_to",
    "dropout_generator",
    "in_memory_stream",
    "loader_batches",
    "loader_stream",
    "modality_keep_mask",
    "shard",
    "shard_weight",
    "with_dropped",
]
