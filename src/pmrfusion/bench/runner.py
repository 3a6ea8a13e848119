"""Train every method for every seed and evaluate it under every protocol condition."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.tensors import PreparedData, prepare
from pmrfusion.eval.protocols import check_protocol, conditions
from pmrfusion.eval.regression_metrics import task_metrics
from pmrfusion.methods.base import FusionModel, build_method, method_config
from pmrfusion.tasks import REGRESSION, check_regression_method
from pmrfusion.train.trainer import TrainConfig, TrainResult, predict, seed_everything, train


@dataclass
class RunSpec:
    methods: Sequence[str]
    protocols: Sequence[str] = ("clean", "missing", "gaussian")
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    method_overrides: dict[str, Any] = field(default_factory=dict)  # applied where a method has the key
    train: TrainConfig = field(default_factory=TrainConfig)  # label noise: train.label_noise
    val_fraction: float = 0.15

    @property
    def label_noise(self) -> float:
        """Fraction of training labels flipped (seeded), see `TrainConfig.label_noise`."""
        return self.train.label_noise


def overrides_for(method: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The subset of overrides that `method`'s config accepts."""
    fields = {f.name for f in dataclasses.fields(type(method_config(method)))}
    return {k: v for k, v in overrides.items() if k in fields}


def seeded_splits(
    dataset: str, seeds: int, data_root: str | None = None, val_fraction: float = 0.15
) -> Iterator[tuple[int, PreparedData]]:
    """(seed, prepared data) for seeds 0..seeds-1: validation split and scaling made per seed."""
    data = load_dataset(dataset, data_root)
    for seed in range(seeds):
        yield seed, prepare(data, val_fraction, seed)


def fit_method(
    method: str, prepared: PreparedData, seed: int, overrides: dict[str, Any], tc: TrainConfig
) -> tuple[FusionModel, TrainResult]:
    """Build `method` under `seed` and train it on the prepared splits."""
    seed_everything(seed)
    model = build_method(method, prepared.dims, prepared.num_classes, **overrides_for(method, overrides))
    result = train(model, prepared.train, prepared.val, dataclasses.replace(tc, seed=seed))
    return model, result


def evaluate(
    model: FusionModel,
    prepared: PreparedData,
    protocols: Sequence[str],
    seed: int,
    base: dict[str, Any],
) -> list[dict]:
    """Records for every metric of every condition of every protocol."""
    records = []
    train_range = prepared.train_range
    for proto in protocols:
        for cond in conditions(proto, prepared.test, seed, train_range):
            logits = predict(model, cond.features, cond.present)
            for metric, value in task_metrics(
                logits, prepared.test.labels, prepared.num_classes
            ).items():
                records.append(
                    {
                        **base,
                        "protocol": proto,
                        "condition": cond.name,
                        "present": cond.present_modalities,
                        "seed": seed,
                        "metric": metric,
                        "value": value,
                    }
                )
    return records


def run_grid(
    data: MultimodalData,
    spec: RunSpec,
    on_cell: Callable[[str, int, float], None] | None = None,
) -> list[dict]:
    """Records for methods x seeds x protocol conditions (accuracy as a fraction)."""
    for m in spec.methods:
        method_config(m)  # fail fast on unknown names, before any training
        if data.task == REGRESSION:
            check_regression_method(m)
    for proto in spec.protocols:
        check_protocol(proto)
    records: list[dict] = []
    for seed in spec.seeds:
        prepared = prepare(data, spec.val_fraction, seed)
        for method in spec.methods:
            t0 = time.perf_counter()
            model, _ = fit_method(method, prepared, seed, spec.method_overrides, spec.train)
            base = {"dataset": data.name, "method": method}
            records.extend(evaluate(model, prepared, spec.protocols, seed, base))
            if on_cell is not None:
                on_cell(method, seed, time.perf_counter() - t0)
    return records


__all__ = ["RunSpec", "evaluate", "fit_method", "overrides_for", "run_grid"]
