"""The trainer: total = task CE + sum_i lambda_i * aux_i, per-group optimizers, early stopping.
Regression (float labels): task L1 or MSE, early stopping on validation MAE.

Run under `torchrun` (an initialised process group with world size > 1) the same loop trains
with DistributedDataParallel, see `pmrfusion.train.distributed`; a single process takes
exactly the code path it always did.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pmrfusion.data.absent import check_absent_fill
from pmrfusion.data.batching import batch_to, modality_keep_mask
from pmrfusion.data.prepared import Split
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import Batch, FusionModel
from pmrfusion.optim import OptimizerSpec, check_kernel, make_optimizer
from pmrfusion.precision import autocast, check_precision, grad_scaler
from pmrfusion.tasks import REGRESSION_LOSSES, regression_loss
from pmrfusion.train import distributed
from pmrfusion.train.devices import resolve_device

LR_SCHEDULES = ("constant", "cosine", "multistep")
MULTISTEP_FRACTIONS = (0.5, 0.75)  # milestones of "multistep", as fractions of the epochs
MULTISTEP_GAMMA = 0.1
# TrainConfig fields added after records existed, with their defaults: a cell's settings record
# them only when set otherwise, so earlier cells keep their config hash.
RECORDED_WHEN_SET = {"lr_schedule": "constant"}
MAIN_OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
# Feature-vector validation runs as one forward over the whole split up to this many input values
# (rows x summed feature width), in chunks of at least the split's eval batch size above it.
VALIDATION_ONE_PASS_ELEMENTS = 2**23


@dataclass
class TrainConfig:
    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # The main optimizer: "adamw" (decoupled weight decay) or "adam" (weight decay added to the
    # gradient as L2, torch.optim.Adam: what RCML's and TMC's official code use).
    optimizer: str = "adamw"
    # The optimizers' PyTorch kernel (`pmrfusion.optim`): "auto" (fused where the device has fused
    # kernels, else foreach), "fused", "foreach" or "single" (the per-tensor loop the trainer ran
    # before; the fused and foreach updates equal it up to float32 rounding in the last bits).
    optimizer_kernel: str = "auto"
    patience: int = 25
    seed: int = 0
    # Named groups (from `FusionModel.optimizer_groups`) trained by their own optimizer
    # instead of the main AdamW, e.g. {"pmr": OptimizerSpec()} for the paper's extra SGD.
    # None: use the model's `default_group_optimizers`.
    group_optimizers: dict[str, OptimizerSpec] | None = None
    quiet: bool = True
    # Fraction of training labels flipped before training (seeded by `seed`): exactly
    # round(label_noise * N) rows get a different class drawn uniformly among the other
    # classes seen in the training labels. Validation and test labels are never touched.
    label_noise: float = 0.0
    # Missing-modality augmentation: each modality of each training sample is zeroed and marked
    # absent with this probability (seeded; at least one modality is kept per sample).
    modality_dropout: float = 0.0
    # What a dropped modality is fed as (pmrfusion.data.absent): "zero_feature" = original-unit
    # zero, as protocol "missing"; "mean" = scaled zero (mean imputation, the old behaviour).
    absent_fill: str = "zero_feature"
    # Regression task (float labels): "l1" (the CMU-MOSI convention) or "mse"; early stopping then
    # follows validation MAE. Ignored for classification.
    regression_loss: str = "l1"
    # Where a single-process run trains (`train.devices`): "auto" = CUDA when present, else CPU;
    # "cpu", "cuda", "cuda:N", "mps". Under torchrun each rank uses its own device instead.
    device: str = "auto"
    # Numerical precision of the training forward pass and losses (`pmrfusion.precision`): "32",
    # "bf16" (bfloat16 autocast) or "16-mixed" (float16 autocast + gradient scaler). The losses that
    # need float32 (evidential, Sinkhorn, SRHT, preservation) stay float32; evaluation runs in float32.
    precision: str = "32"
    # The learning-rate schedule of every optimizer the trainer builds, stepped once per epoch
    # (`LR_SCHEDULES`): "constant"; "cosine" (CosineAnnealingLR over `epochs`); "multistep"
    # (MultiStepLR, lr x 0.1 after 50% and after 75% of `epochs`). PMR Table 8 trains with a
    # cosine or multi-step schedule.
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        check_train_config(self)


def check_train_config(tc: TrainConfig) -> None:
    """One PMRFusionError line for the first out-of-range field of a TrainConfig."""

    def integer(name: str, low: int, high: float = float("inf")) -> None:
        v = getattr(tc, name)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            hi = "" if high == float("inf") else f" and <= {int(high)}"
            raise PMRFusionError(f"{name} must be an integer >= {low}{hi}, got {v!r}")

    def number(name: str, ok, allowed: str) -> None:
        v = getattr(tc, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
            raise PMRFusionError(f"{name} must be a finite number {allowed}, got {v!r}")

    integer("epochs", 1)
    integer("batch_size", 1)
    integer("patience", 0)
    integer("seed", 0, 2**32 - 1)
    number("lr", lambda v: v > 0, "> 0")
    number("weight_decay", lambda v: v >= 0, ">= 0")
    number("label_noise", lambda v: 0 <= v <= 1, "in [0, 1]")
    number("modality_dropout", lambda v: 0 <= v < 1, "in [0, 1)")
    if tc.optimizer not in MAIN_OPTIMIZERS:
        raise PMRFusionError(f"unknown optimizer {tc.optimizer!r}: use one of {', '.join(MAIN_OPTIMIZERS)}")
    check_kernel(tc.optimizer_kernel)
    check_absent_fill(tc.absent_fill)
    resolve_device(tc.device)
    check_precision(tc.precision)
    if tc.lr_schedule not in LR_SCHEDULES:
        raise PMRFusionError(f"unknown lr_schedule {tc.lr_schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
    if tc.regression_loss not in REGRESSION_LOSSES:
        raise PMRFusionError(
            f"unknown regression loss {tc.regression_loss!r}: use one of {', '.join(REGRESSION_LOSSES)}"
        )


def check_seed(seed: object) -> int:
    """A seed must be an integer in [0, 2**32 - 1] (numpy's range)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
        raise PMRFusionError(f"seed must be an integer in [0, {2**32 - 1}], got {seed!r}")
    return seed


MAX_SEED_COUNT = 10_000  # seeds one command runs (each seed trains every method)


def seed_range(count: object, first: int = 0, what: str = "--seeds") -> list[int]:
    """Seeds first..first+count-1, checked before any list is made: count >= 1 and every seed in
    check_seed's range."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise PMRFusionError(f"{what} must be >= 1, got {count!r}")
    check_seed(first)
    if first + count - 1 > 2**32 - 1:
        last = first + count - 1
        raise PMRFusionError(f"{what} {count}: seeds {first}..{last} exceed the largest seed {2**32 - 1}")
    if count > MAX_SEED_COUNT:
        raise PMRFusionError(f"{what} {count}: at most {MAX_SEED_COUNT} seeds in one run")
    return list(range(first, first + count))


@dataclass
class TrainResult:
    best_epoch: int
    best_val_accuracy: float
    epochs_run: int
    history: list[dict[str, float]]
    flipped_labels: int = 0
    best_val_mae: float = float("nan")  # regression only


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


LABEL_NOISE_SALT = 7_919  # keeps the label-flip stream apart from the batch permutation


def flip_labels(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(noisy labels, flipped row positions): round(fraction * N) rows get another class.

    The new class is uniform among the *other* classes present in `labels`; seeded.
    """
    if not 0.0 <= fraction <= 1.0:
        raise PMRFusionError(f"label noise must be a fraction in [0, 1], got {fraction}")
    classes = torch.unique(labels)
    k = int(round(fraction * len(labels)))
    if k == 0 or len(classes) < 2:
        return labels.clone(), torch.empty(0, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed * LABEL_NOISE_SALT + 1)
    rows = torch.randperm(len(labels), generator=gen)[:k].sort().values
    pos = torch.searchsorted(classes, labels[rows])
    shift = torch.randint(1, len(classes), (k,), generator=gen)
    noisy = labels.clone()
    noisy[rows] = classes[(pos + shift) % len(classes)]
    return noisy, rows


def total_loss(
    model: FusionModel, batch: Batch, forward=None, regression: str = "l1"
) -> tuple[Tensor, dict[str, Tensor]]:
    """Task loss (cross-entropy; `regression` L1/MSE for float labels) plus weighted auxiliary losses,
    and each unweighted term detached (tensors: reading them is left to the caller, once an epoch).

    `forward` (default `model`) runs the forward pass, e.g. a DistributedDataParallel wrapper.
    """
    out = (forward or model)(batch.features, batch.present)
    if batch.labels.is_floating_point():
        task = regression_loss(out.logits, batch.labels, regression)
    else:
        task = model.task_loss(out, batch)
    total = task
    parts = {"task": task.detach()}
    for name, value in model.auxiliary_losses(out, batch).items():
        weight = model.loss_weights.get(name, 1.0)
        total = total + weight * value
        parts[name] = value.detach()
    return total, parts


def _optimizers(model: FusionModel, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    groups = model.optimizer_groups()
    wanted = model.default_group_optimizers if cfg.group_optimizers is None else cfg.group_optimizers
    unknown = set(wanted) - set(groups)
    if unknown:
        raise PMRFusionError(
            f"model has no parameter group(s) {sorted(unknown)}; it has {sorted(groups) or 'none'}"
        )
    own = {id(p) for g, spec in wanted.items() if not spec.additional for p in groups[g]}
    main = [p for p in model.parameters() if id(p) not in own and p.requires_grad]
    kernel = cfg.optimizer_kernel
    opts = [make_optimizer(cfg.optimizer, main, cfg.lr, cfg.weight_decay, kernel)] if main else []
    for g, spec in wanted.items():
        opts.append(spec.build(groups[g], kernel))
    return opts


def lr_schedulers(
    opts: list[torch.optim.Optimizer], schedule: str, epochs: int
) -> list[torch.optim.lr_scheduler.LRScheduler]:
    """One scheduler per optimizer for `schedule` over `epochs` (none for "constant"); the trainer
    steps each once at the end of every epoch."""
    if schedule == "constant":
        return []
    if schedule == "cosine":
        return [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs) for o in opts]
    milestones = sorted({max(1, round(f * epochs)) for f in MULTISTEP_FRACTIONS})
    return [torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma=MULTISTEP_GAMMA) for o in opts]


def recorded_train_settings(settings: dict) -> dict:
    """`settings` (a TrainConfig as a dict) without the `RECORDED_WHEN_SET` fields at their default."""
    return {k: v for k, v in settings.items() if k not in RECORDED_WHEN_SET or v != RECORDED_WHEN_SET[k]}


def optimizer_step(
    loss: Tensor, opts: list[torch.optim.Optimizer], scaler: torch.amp.GradScaler | None = None
) -> None:
    """One step of every optimizer on `loss` (gradients cleared to None first); with `scaler`
    (float16 training) the loss is scaled and the steps unscaled and skipped on inf/NaN."""
    for o in opts:
        o.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        for o in opts:
            o.step()
        return
    scaler.scale(loss).backward()
    for o in opts:
        scaler.step(o)
    scaler.update()


def build_optimizers(model: FusionModel, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """The optimizers `train` uses for `model` under `cfg` (public, for cost measurements)."""
    return _optimizers(model, cfg)


@torch.no_grad()
def predict(
    model: FusionModel, features: dict[str, Tensor], present: Tensor | None = None, batch_size: int = 4096
) -> Tensor:
    """Logits for every row, in eval mode (computed on the model's device, returned on CPU)."""
    model.eval()
    device = _device_of(model)
    n = next(iter(features.values())).shape[0]
    outs = []
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        pres = present[sl].to(device) if present is not None else None
        outs.append(model({m: x[sl].to(device) for m, x in features.items()}, pres).logits.cpu())
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def _device_of(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict_split(model: FusionModel, split: Split) -> Tensor:
    """Logits for every row of a split (any kind), in eval mode, in row order (returned on CPU)."""
    model.eval()
    device = _device_of(model)
    on_device = (batch_to(b, device, non_blocking=True) for b in split.eval_batches())
    return torch.cat([model(b.features, None).logits.cpu() for b in on_device])


def validation_rows_per_pass(split: TensorSplit) -> int:
    """Rows one validation forward takes: the whole split while rows x width stays within
    VALIDATION_ONE_PASS_ELEMENTS, else chunks of that many values (at least `eval_batch_size` rows)."""
    width = sum(int(x[0].numel()) for x in split.features.values()) if len(split) else 1
    return max(split.eval_batch_size, VALIDATION_ONE_PASS_ELEMENTS // max(width, 1))


@torch.no_grad()
def validation_logits(model: FusionModel, split: Split) -> Tensor:
    """Logits for every row of a validation split, in row order (on CPU). A feature split runs as
    one forward over its whole feature tensors (no per-batch gather; chunked only above
    `validation_rows_per_pass`); a raw split streams its eval batches (`predict_split`)."""
    if not isinstance(split, TensorSplit):
        return predict_split(model, split)
    return predict(model, split.features, None, validation_rows_per_pass(split))


def _validate(model: FusionModel, val: Split) -> tuple[float, float]:
    logits = validation_logits(model, val)
    if val.labels.is_floating_point():  # regression: (-MAE, MAE) so that higher is better
        mae = float((logits.reshape(-1) - val.labels).abs().mean())
        return -mae, mae
    loss = float(F.cross_entropy(logits, val.labels))
    acc = float((logits.argmax(-1) == val.labels).float().mean())
    return acc, loss


def loss_accumulation_dtype(device: torch.device) -> torch.dtype:
    """float64 (the sums a Python float loop made, bit for bit); float32 where the device has no
    float64 (MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def epoch_means(sums: dict[str, Tensor], steps: int) -> dict[str, float]:
    """Per-term epoch means of summed loss tensors: one host read (`tolist`) for every term."""
    if not sums:
        return {}
    totals = torch.stack(list(sums.values())).tolist()
    return {k: v / max(steps, 1) for k, v in zip(sums, totals)}


def train(model: FusionModel, data: Split, val: Split | None, cfg: TrainConfig) -> TrainResult:
    """Train in place; with a validation split, restore the best epoch (accuracy, then loss).

    `data` is any split (`TensorSplit` in memory or `RawSplit` streamed by a DataLoader): it makes
    the run's batches (`training_stream`, see `pmrfusion.data.batching`); the loop is the same.
    """
    if len(data) == 0:
        raise PMRFusionError("training split is empty")
    regressing = data.labels.is_floating_point()
    if regressing and cfg.label_noise:
        raise PMRFusionError("label noise (class flips) is defined for classification only")
    flipped = 0
    if cfg.label_noise:
        noisy, rows = flip_labels(data.labels, cfg.label_noise, cfg.seed)
        data = data.with_labels(noisy)
        flipped = len(rows)
    ctx = distributed.current()
    forward = None
    if ctx is not None:
        forward = distributed.wrap(model, ctx)
        device = ctx.device
    else:
        device = resolve_device(cfg.device)
        model.to(device)
    check_absent_fill(cfg.absent_fill)
    epoch_batches = data.training_stream(cfg.batch_size, cfg.seed, cfg.modality_dropout, cfg.absent_fill, ctx)
    opts = _optimizers(model, cfg)
    schedulers = lr_schedulers(opts, cfg.lr_schedule, cfg.epochs)
    scaler = grad_scaler(device, cfg.precision)
    accumulate = loss_accumulation_dtype(torch.device(device))
    best_key, best_state, best_epoch, best_acc = None, None, 0, float("nan")
    history: list[dict[str, float]] = []
    progress = None
    if not cfg.quiet and (ctx is None or ctx.is_main):
        from rich.progress import Progress

        progress = Progress(transient=True)
        task_id = progress.add_task("training", total=cfg.epochs)
        progress.start()
    epoch = 0
    try:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            model.on_epoch_start(epoch)
            sums: dict[str, Tensor] = {}
            steps = 0
            for batch, weight in epoch_batches(epoch):
                with autocast(device, cfg.precision):
                    on_device = batch_to(batch, device, non_blocking=True)
                    loss, parts = total_loss(model, on_device, forward, cfg.regression_loss)
                if ctx is not None:
                    loss = loss * weight
                optimizer_step(loss.float(), opts, scaler)
                for k, v in parts.items():  # on the device: no host sync inside the step
                    sums[k] = sums.get(k, 0.0) + v.to(accumulate)
                steps += 1
            for sched in schedulers:
                sched.step()
            record = epoch_means(sums, steps)
            if ctx is not None:
                record = distributed.all_mean(record, ctx)
            record["epoch"] = epoch
            if val is not None and len(val):
                acc, vloss = _validate(model, val)
                if regressing:
                    record.update(val_mae=vloss)
                else:
                    record.update(val_accuracy=acc, val_loss=vloss)
                key = (acc, -vloss)
                if best_key is None or key > best_key:
                    best_key, best_epoch, best_acc = key, epoch, acc
                    best_state = copy.deepcopy(model.state_dict())
                elif epoch - best_epoch >= cfg.patience:
                    history.append(record)
                    break
            history.append(record)
            if not np.isfinite(record.get("task", 0.0)):
                raise PMRFusionError(f"training diverged at epoch {epoch} (non-finite loss)")
            if progress is not None:
                progress.update(
                    task_id, advance=1, description=f"epoch {epoch} loss {record.get('task', 0):.3f}"
                )
    finally:
        if progress is not None:
            progress.stop()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = epoch
    model.eval()
    if regressing:
        return TrainResult(best_epoch, float("nan"), epoch, history, flipped, -best_acc)
    return TrainResult(best_epoch, best_acc, epoch, history, flipped)


__all__ = [
    "TrainConfig",
    "TrainResult",
    "LR_SCHEDULES",
    "build_optimizers",
    "check_seed",
    "check_train_config",
    "flip_labels",
    "lr_schedulers",
    "recorded_train_settings",
    "modality_keep_mask",
    "optimizer_step",
    "predict",
    "predict_split",
    "seed_everything",
    "seed_range",
    "total_loss",
    "train",
    "validation_logits",
]
