"""Analyses of the encoders of raw-input models (PMR Tables 5-6 "Unimodal lin.", Fig. 4 at V_m).

- `encoder_probes`: for each seed, an encoder trained alone (unimodal, linear head) and the encoders
  trained inside each end-to-end multimodal model; each is frozen and a logistic-regression probe
  is fitted on its training-row outputs V_m and scored on the test rows.
- `encoder_gradient_cosine`: over end-to-end training of a PMR model, every `every` steps, the
  cosine between d L_task / d V_m and d L_preserve / d V_m on the training batch, per modality; the
  step itself is the trainer's usual one (task + weighted auxiliary losses).

Started by `pmrfusion analyze-encoders probes|gradcos --dataset avmnist --out DIR`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn

from pmrfusion.bench.runner import fit_method, prepare_seed
from pmrfusion.data.prepared import PreparedData
from pmrfusion.data.raw import RawMultimodalData
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.encoded import build_model
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.regimes import build_encoders, fit_unimodal
from pmrfusion.train.trainer import TrainConfig, build_optimizers, optimizer_step, seed_everything

PROBE_BATCH = 512


@torch.no_grad()
def encoder_outputs(encoder: nn.Module, split, modality: str) -> np.ndarray:
    """V_m of every row of `split` (one modality), in row order, as a float array."""
    encoder.eval()
    parts = [encoder(b.features[modality]) for b in split.batches(split.loader(PROBE_BATCH))]
    return torch.cat(parts).float().cpu().numpy()


def probe_accuracy(encoder: nn.Module, prepared: PreparedData, modality: str) -> float:
    """Test accuracy of a logistic regression fitted on the frozen encoder's standardised training V_m."""
    xtr = encoder_outputs(encoder, prepared.train.only([modality]), modality)
    xte = encoder_outputs(encoder, prepared.test.only([modality]), modality)
    scaler = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=500).fit(scaler.transform(xtr), prepared.train.labels.numpy())
    return float(clf.score(scaler.transform(xte), prepared.test.labels.numpy()))


def _check_raw(data) -> None:
    if not isinstance(data, RawMultimodalData):
        raise PMRFusionError(f"dataset '{data.name}' holds feature vectors: encoder analyses need raw inputs")


def encoder_probes(
    data: RawMultimodalData,
    methods: Sequence[str],
    seeds: Sequence[int],
    tc: TrainConfig,
    cfg: EncoderConfig | None = None,
    val_fraction: float = 0.15,
    report: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """Rows (seed, model, modality, probe_accuracy): the unimodal encoder ("unimodal") and each method's."""
    _check_raw(data)
    cfg = cfg or EncoderConfig()
    rows: list[dict] = []

    def add(seed: int, model: str, modality: str, acc: float) -> None:
        rows.append({"seed": seed, "model": model, "modality": modality, "probe_accuracy": round(acc, 4)})
        report(rows[-1])

    for seed in seeds:
        prepared = prepare_seed(data, seed, val_fraction, cfg)
        for m in prepared.modalities:
            clf, _ = fit_unimodal(m, prepared, seed, tc, cfg)
            add(seed, "unimodal", m, probe_accuracy(clf.encoder, prepared, m))
        for method in methods:
            model, _ = fit_method(method, prepared, seed, {}, tc, encoder=cfg)
            for m in prepared.modalities:
                add(seed, method, m, probe_accuracy(model.encoders[m], prepared, m))
    return rows


def _cosine(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
    if a is None or b is None:
        return math.nan
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def encoder_gradient_cosine(
    data: RawMultimodalData,
    methods: Sequence[str],
    seed: int = 0,
    epochs: int = 3,
    every: int = 10,
    batch_size: int = 64,
    cfg: EncoderConfig | None = None,
    val_fraction: float = 0.15,
    report: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """Rows (method, seed, epoch, step, modality, cosine) of cos(dL_task/dV_m, dL_preserve/dV_m)."""
    _check_raw(data)
    if every < 1 or epochs < 1:
        raise PMRFusionError("--every and --epochs must be >= 1")
    cfg = cfg or EncoderConfig()
    prepared = prepare_seed(data, seed, val_fraction, cfg)
    rows: list[dict] = []
    for method in methods:
        seed_everything(seed)
        model = build_model(build_encoders(prepared, cfg), method, prepared.num_classes)
        opts = build_optimizers(model, TrainConfig())
        loader = prepared.train.loader(batch_size, shuffle_seed=seed)
        step = 0
        for epoch in range(1, epochs + 1):
            model.train()
            for batch in prepared.train.batches(loader):
                out = model(batch.features, batch.present)
                views = [model.last_encoded[m] for m in model.modalities]
                task = F.cross_entropy(out.logits, batch.labels)
                aux = model.auxiliary_losses(out, batch)
                if "preserve" not in aux:
                    raise PMRFusionError(f"method '{method}' has no preservation loss: use a PMR method")
                total = task + sum(model.loss_weights.get(k, 1.0) * v for k, v in aux.items())
                if step % every == 0:
                    g_task = torch.autograd.grad(task, views, retain_graph=True, allow_unused=True)
                    g_pres = torch.autograd.grad(aux["preserve"], views, retain_graph=True, allow_unused=True)
                    for m, a, b in zip(model.modalities, g_task, g_pres):
                        rows.append({"method": method, "seed": seed, "epoch": epoch, "step": step,
                                     "modality": m, "cosine": round(_cosine(a, b), 5)})  # fmt: skip
                        report(rows[-1])
                optimizer_step(total, opts)
                step += 1
    return rows


__all__ = ["encoder_gradient_cosine", "encoder_outputs", "encoder_probes", "probe_accuracy"]
