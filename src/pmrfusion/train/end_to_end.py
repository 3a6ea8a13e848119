"""Encoders + fusion on raw data: the three regimes of the papers, evaluation, the bench grid.

Regimes (PMR §4):
- `end-to-end`: encoders trained jointly with the fusion method and its head;
- `frozen`: each encoder first trained alone with a linear head on its modality
  (`pretrain_encoders`), then fixed while the fusion method trains;
- `finetune`: the same unimodal pre-training, then everything trained jointly.
Pre-training runs once per seed and is shared by every method of that seed.

A pretrained encoder (`minilm`) already has its pre-training: it skips the unimodal stage, and its
pretrained weights train with their own AdamW learning rate (`EncoderConfig.pretrained_lr`). So
for it `end-to-end` and `finetune` both fine-tune its shipped weights with the fusion (they differ
only in the other modalities' encoders), and `frozen` keeps its shipped weights fixed (and its
linear map to `out_dim`, if any, at its random initialisation): only the fusion (and the other
encoders' pre-training) trains, as with cached frozen embeddings (`mosi-minilm`).

Regression datasets (float labels, e.g. `mosi-text`) train with the trainer's L1 loss, early-stop
on validation MAE and are scored with `eval.regression_metrics` (`task_metrics`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from pmrfusion.data.raw import LoaderSettings, RawMultimodalData, RawSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.raw_protocols import check_raw_protocol, raw_conditions
from pmrfusion.eval.regression_metrics import primary_metric, task_metrics
from pmrfusion.methods.base import FusionModel, method_config
from pmrfusion.modules.composition import (
    EncodedFusion,
    ModalityEncoder,
    UnimodalClassifier,
    build_model,
    default_encoders,
    encoder_names,
    with_encoder_inputs,
)
from pmrfusion.modules.encoders import encoder_spec
from pmrfusion.modules.frontends import FrontendConfig, ModalityStats, fit_stats
from pmrfusion.optim import OptimizerSpec
from pmrfusion.train.trainer import TrainConfig, TrainResult, predict, seed_everything, train

REGIMES = ("end-to-end", "frozen", "finetune")


@dataclass
class EncoderConfig:
    """Which encoders, how wide, and the regime; defaults follow each modality's kind."""

    regime: str = "end-to-end"
    encoders: dict[str, str] = field(default_factory=dict)  # modality -> registered encoder
    out_dims: dict[str, int] | None = None
    widths: dict[str, int] | None = None
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    loader: LoaderSettings = field(default_factory=LoaderSettings)
    encoder_lr: float | None = None  # None: TrainConfig.lr
    pretrained_lr: float = 5e-5  # AdamW learning rate of pretrained weights (MiniLM's BERT) when fine-tuned
    pretrain_epochs: int | None = None  # None: TrainConfig.epochs
    max_length: int = 128  # tokens per text for token encoders (minilm); padding is trimmed per batch

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise PMRFusionError(f"unknown regime '{self.regime}': use one of {', '.join(REGIMES)}")


@dataclass
class RawPrepared:
    """Train/val/test raw splits of one seed, with the training rows' front-end statistics."""

    data: RawMultimodalData
    train: RawSplit
    val: RawSplit | None
    test: RawSplit
    stats: dict[str, ModalityStats]
    _test_features: dict[str, Tensor] | None = None

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def modalities(self) -> list[str]:
        return self.data.modalities

    def test_features(self) -> dict[str, Tensor]:
        """The decoded test split as float tensors, token ids kept as int64 (kept for every
        protocol condition)."""
        if self._test_features is None:
            kinds = self.data.kinds
            feats = self.test.materialize()
            self._test_features = {m: x if kinds[m] == "tokens" else x.float() for m, x in feats.items()}
        return self._test_features


def prepare_raw(
    data: RawMultimodalData, val_fraction: float = 0.15, seed: int = 0, cfg: EncoderConfig | None = None
) -> RawPrepared:
    """Seeded validation split carved from train; front-end statistics from the training rows.

    Text modalities whose encoder takes tokens are tokenised at decode time (`with_encoder_inputs`).
    """
    cfg = cfg or EncoderConfig()
    data = with_encoder_inputs(data, cfg.encoders, cfg.max_length)
    data = data.with_validation(val_fraction, seed)
    splits = {s: RawSplit(data, data.splits[s], None, cfg.loader) for s in data.splits}
    stats = fit_stats(splits["train"], cfg.frontend)
    return RawPrepared(data, splits["train"], splits.get("val"), splits["test"], stats)


def build_encoders(prepared: RawPrepared, cfg: EncoderConfig) -> dict[str, ModalityEncoder]:
    return default_encoders(
        prepared.data, prepared.train, cfg.encoders, cfg.out_dims, cfg.widths, cfg.frontend, prepared.stats
    )


def _pretrained_optimizer(cfg: EncoderConfig, tc: TrainConfig) -> OptimizerSpec:
    return OptimizerSpec("adamw", cfg.pretrained_lr, 0.9, tc.weight_decay)


def fit_unimodal(
    modality: str, prepared: RawPrepared, seed: int, tc: TrainConfig, cfg: EncoderConfig,
    encoder: ModalityEncoder | None = None,
) -> tuple[UnimodalClassifier, TrainResult]:  # fmt: skip
    """Encoder + linear head trained on one modality (unimodal baseline and pre-training)."""
    seed_everything(seed)
    enc = encoder if encoder is not None else build_encoders(prepared, cfg)[modality]
    clf = UnimodalClassifier(modality, enc, prepared.num_classes, _pretrained_optimizer(cfg, tc))
    val = prepared.val.only([modality]) if prepared.val is not None else None
    epochs = cfg.pretrain_epochs or tc.epochs
    tc = dataclasses.replace(tc, seed=seed, epochs=epochs)
    result = train(clf, prepared.train.only([modality]), val, tc)
    return clf, result


def pretrain_encoders(
    prepared: RawPrepared, seed: int, tc: TrainConfig, cfg: EncoderConfig
) -> dict[str, ModalityEncoder]:
    """Every encoder trained alone with a linear head (the `frozen` / `finetune` start); pretrained
    encoders (`minilm`) keep their shipped weights."""
    seed_everything(seed)
    encs = build_encoders(prepared, cfg)
    names = encoder_names(prepared.data, cfg.encoders)
    for m in prepared.modalities:
        if not encoder_spec(names[m]).pretrained:
            fit_unimodal(m, prepared, seed, tc, cfg, encs[m])
    return encs


def fit_raw_method(
    method: str, prepared: RawPrepared, seed: int, overrides: dict[str, Any], tc: TrainConfig,
    cfg: EncoderConfig, pretrained: dict[str, ModalityEncoder] | None = None,
) -> tuple[EncodedFusion, TrainResult]:  # fmt: skip
    """Build encoders + `method` under `seed` (from `pretrained` in frozen/finetune) and train."""
    from pmrfusion.bench.runner import overrides_for

    seed_everything(seed)
    if cfg.regime != "end-to-end":
        if pretrained is None:
            pretrained = pretrain_encoders(prepared, seed, tc, cfg)
        encs = copy.deepcopy(pretrained)
    else:
        encs = build_encoders(prepared, cfg)
    enc_opt = OptimizerSpec("adamw", cfg.encoder_lr or tc.lr, 0.9, tc.weight_decay)
    pre_opt = _pretrained_optimizer(cfg, tc)
    options = overrides_for(method, overrides)
    model = build_model(encs, method, prepared.num_classes, enc_opt, pre_opt, **options)
    if cfg.regime == "frozen":
        model.freeze_encoders()
    result = train(model, prepared.train, prepared.val, dataclasses.replace(tc, seed=seed))
    return model, result


def evaluate_raw(
    model: FusionModel, prepared: RawPrepared, protocols: Sequence[str], seed: int, base: dict[str, Any]
) -> list[dict]:
    """Records for every metric (classification or regression) of every raw-input condition of
    every protocol."""
    feats = prepared.test_features()
    labels = prepared.test.labels
    records = []
    for proto in protocols:
        for cond in raw_conditions(proto, feats, prepared.data.kinds, prepared.stats, seed):
            logits = predict(model, cond.features, cond.present, batch_size=512)
            for metric, value in task_metrics(logits, labels, prepared.num_classes).items():
                records.append({**base, "protocol": proto, "condition": cond.name,
                                "present": cond.present_modalities, "seed": seed,
                                "metric": metric, "value": value})  # fmt: skip
    return records


def encoder_config_for(data, encoders: str | None, regime: str) -> EncoderConfig | None:
    """The CLI's `--encoders` / `--regime` as an EncoderConfig (None for feature datasets)."""
    from pmrfusion.modules.composition import parse_encoder_spec

    if not isinstance(data, RawMultimodalData):
        if encoders is not None or regime != "end-to-end":
            raise PMRFusionError("--encoders and --regime apply to raw datasets (manifests, avmnist) only")
        return None
    cfg = EncoderConfig(regime=regime, encoders=parse_encoder_spec(encoders))
    unknown = sorted(set(cfg.encoders) - set(data.modalities))
    if unknown:
        raise PMRFusionError(f"--encoders names unknown modalities {unknown}; dataset has {data.modalities}")
    from pmrfusion.modules.encoders import available_encoders

    bad = sorted(set(cfg.encoders.values()) - set(available_encoders()))
    if bad:
        names = ", ".join(sorted(available_encoders()))
        raise PMRFusionError(f"unknown encoder(s) {bad}: use one of {names}")
    for name in encoder_names(data, cfg.encoders).values():  # kinds match, extras installed
        encoder_spec(name).check_available()
    return cfg


def train_command(
    data: RawMultimodalData, method: str, seed: int, overrides: dict[str, Any], tc: TrainConfig,
    save=None, cfg: EncoderConfig | None = None, dataset: str | None = None,
) -> str:  # fmt: skip
    """`pmrfusion train` on raw data (DDP under torchrun): train, test clean, the summary line;
    with `save`, a raw checkpoint (`train.raw_checkpoint`) naming `dataset` (default: data.name)."""
    from pmrfusion.train import distributed

    cfg = cfg or EncoderConfig()
    prepared = prepare_raw(data, 0.15, seed, cfg)
    with distributed.distributed_session() as ctx:
        model, result = fit_raw_method(method, prepared, seed, overrides, tc, cfg)
        if ctx is not None and not ctx.is_main:
            return ""
        recs = evaluate_raw(model, prepared, ["clean"], seed, {})
        metric = primary_metric(recs)
        value = next(r["value"] for r in recs if r["metric"] == metric)
        val = result.best_val_accuracy if metric == "accuracy" else result.best_val_mae
        where = f" ({ctx.world_size} processes, {ctx.device.type})" if ctx is not None else ""
        line = (
            f"{method} on {data.name}{where}, {cfg.regime}: best epoch {result.best_epoch}/"
            f"{result.epochs_run}, val {metric} {val:.4f}, test {metric} {value:.4f}"
        )
        if save is not None:
            from pmrfusion.train.raw_checkpoint import save_raw_checkpoint

            save_raw_checkpoint(
                save, model, method, overrides, prepared.data, encoder_names(prepared.data, cfg.encoders),
                cfg.widths, cfg.frontend, prepared.stats, dataset or data.name, cfg.max_length,
            )  # fmt: skip
            line += f"\ncheckpoint written to {save}"
        return line


def run_raw_grid(
    data: RawMultimodalData,
    spec,
    on_cell: Callable[[str, int, float], None] | None = None,
) -> list[dict]:
    """`run_grid` for raw data: methods x seeds x raw protocol conditions under `spec.encoder`."""
    cfg: EncoderConfig = getattr(spec, "encoder", None) or EncoderConfig()
    for m in spec.methods:
        method_config(m)
    for proto in spec.protocols:
        check_raw_protocol(proto)
    records: list[dict] = []
    for seed in spec.seeds:
        prepared = prepare_raw(data, spec.val_fraction, seed, cfg)
        pretrained = None
        if cfg.regime != "end-to-end":
            pretrained = pretrain_encoders(prepared, seed, spec.train, cfg)
        for method in spec.methods:
            t0 = time.perf_counter()
            overrides = spec.method_overrides
            model, _ = fit_raw_method(method, prepared, seed, overrides, spec.train, cfg, pretrained)
            base = {"dataset": data.name, "method": method, "regime": cfg.regime}
            records.extend(evaluate_raw(model, prepared, spec.protocols, seed, base))
            if on_cell is not None:
                on_cell(method, seed, time.perf_counter() - t0)
    return records


__all__ = [
    "REGIMES",
    "EncoderConfig",
    "RawPrepared",
    "build_encoders",
    "encoder_config_for",
    "evaluate_raw",
    "fit_raw_method",
    "fit_unimodal",
    "pretrain_encoders",
    "prepare_raw",
    "run_raw_grid",
    "train_command",
]
