"""Encoders for raw inputs under the three regimes of the papers (PMR section 4).

- `end-to-end`: encoders built fresh and trained jointly with the fusion method and its head;
- `frozen`: each encoder first trained alone with a linear head on its modality
  (`pretrain_encoders`), then fixed while the fusion method trains;
- `finetune`: the same unimodal pre-training, then everything trained jointly.
Pre-training runs once per seed and is shared by every method of that seed.

A pretrained encoder (`minilm`) already has its pre-training: it skips the unimodal stage, and its
pretrained weights train with their own AdamW learning rate (`EncoderConfig.pretrained_lr`). So
for it `end-to-end` and `finetune` both fine-tune its shipped weights with the fusion (they differ
only in the other modalities' encoders), and `frozen` keeps its shipped weights fixed (and its
linear map to `out_dim`, if any, at its random initialisation).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from pmrfusion.data.prepared import PreparedData
from pmrfusion.methods.encoded import EncodedFusion, UnimodalClassifier, build_model
from pmrfusion.modules.composition import EncoderConfig, ModalityEncoder, default_encoders, encoder_names
from pmrfusion.modules.encoders import encoder_spec
from pmrfusion.optim import OptimizerSpec
from pmrfusion.train.trainer import TrainConfig, TrainResult, seed_everything, train


def build_encoders(prepared: PreparedData, cfg: EncoderConfig) -> dict[str, ModalityEncoder]:
    """Fresh encoders for `prepared`'s modalities (front-ends from its training statistics)."""
    return default_encoders(
        prepared.data, prepared.train, cfg.encoders, cfg.out_dims, cfg.widths, cfg.frontend, prepared.stats
    )


def pretrained_optimizer(cfg: EncoderConfig, tc: TrainConfig) -> OptimizerSpec:
    return OptimizerSpec("adamw", cfg.pretrained_lr, 0.9, tc.weight_decay)


def fit_unimodal(
    modality: str, prepared: PreparedData, seed: int, tc: TrainConfig, cfg: EncoderConfig,
    encoder: ModalityEncoder | None = None,
) -> tuple[UnimodalClassifier, TrainResult]:  # fmt: skip
    """Encoder + linear head trained on one modality (unimodal baseline and pre-training)."""
    seed_everything(seed)
    enc = encoder if encoder is not None else build_encoders(prepared, cfg)[modality]
    clf = UnimodalClassifier(modality, enc, prepared.num_classes, pretrained_optimizer(cfg, tc))
    val = prepared.val.only([modality]) if prepared.val is not None else None
    epochs = cfg.pretrain_epochs or tc.epochs
    tc = dataclasses.replace(tc, seed=seed, epochs=epochs)
    result = train(clf, prepared.train.only([modality]), val, tc)
    return clf, result


def pretrain_encoders(
    prepared: PreparedData, seed: int, tc: TrainConfig, cfg: EncoderConfig
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


def build_encoded(
    method: str, prepared: PreparedData, seed: int, options: dict[str, Any], tc: TrainConfig,
    cfg: EncoderConfig, pretrained: dict[str, ModalityEncoder] | None = None,
) -> EncodedFusion:  # fmt: skip
    """Encoders (fresh, or copies of `pretrained`, pre-trained here when None, outside end-to-end)
    + `method` built on their widths; frozen encoders in the `frozen` regime. Call after seeding."""
    if cfg.regime != "end-to-end":
        if pretrained is None:
            pretrained = pretrain_encoders(prepared, seed, tc, cfg)
        encs = copy.deepcopy(pretrained)
    else:
        encs = build_encoders(prepared, cfg)
    enc_opt = OptimizerSpec("adamw", cfg.encoder_lr or tc.lr, 0.9, tc.weight_decay)
    model = build_model(encs, method, prepared.num_classes, enc_opt, pretrained_optimizer(cfg, tc), **options)
    if cfg.regime == "frozen":
        model.freeze_encoders()
    return model


__all__ = ["build_encoded", "build_encoders", "fit_unimodal", "pretrain_encoders", "pretrained_optimizer"]
