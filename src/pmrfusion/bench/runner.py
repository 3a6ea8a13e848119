"""The one experiment runner: fit a method on a prepared split, evaluate it for a task.

Every experiment of the package (the `bench` and `suite` commands, retrieval, the dynamic-fusion
benchmark, the analyses) goes through `fit_method` + a task's evaluation, usually via `run_grid`.

- A **task** (`TASKS`, `register_task`) says how a trained model is scored on the test split:
  "classification" (every condition of every protocol, `classification_metrics`) and "retrieval"
  (cross-modal mAP/R@k on test embeddings, plus model-free baselines such as CCA per seed). A
  regression task registers itself here with its own `evaluate` (and metrics in `eval/`).
- A **model builder** (`RunSpec.build`, `fit_method(..., build=...)`) makes the model; the default
  is `methods.build_method(name, dims, num_classes, **options)`. Encoders over raw data plug in
  here (a builder that wraps a method with per-modality encoders), without a new loop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.tensors import PreparedData, prepare
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import check_protocol, conditions
from pmrfusion.eval.regression_metrics import task_metrics
from pmrfusion.methods.base import FusionModel, build_method, method_config
from pmrfusion.tasks import REGRESSION, check_regression_method
from pmrfusion.train.trainer import TrainConfig, TrainResult, check_seed, predict, seed_everything, train

# (method, dims, num_classes, **options) -> model; the default is `build_method`
ModelBuilder = Callable[..., FusionModel]
# (model, prepared, protocols, seed, base record fields, task options) -> records
Evaluator = Callable[[FusionModel, PreparedData, Sequence[str], int, dict, dict], list[dict]]
# (prepared, seed, base record fields, task options) -> records of model-free baselines
Baselines = Callable[[PreparedData, int, dict, dict], list[dict]]


@dataclass(frozen=True)
class Task:
    """How a trained model is scored, and what the task adds to every method's options."""

    name: str
    evaluate: Evaluator
    baselines: Baselines | None = None
    uses_protocols: bool = True
    method_overrides: Callable[[dict], dict] = lambda options: {}  # noqa: E731
    check: Callable[[MultimodalData, dict], None] = lambda data, options: None  # noqa: E731


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise PMRFusionError(f"unknown task '{name}': use one of {', '.join(sorted(TASKS))}")
    return TASKS[name]


@dataclass
class RunSpec:
    """What to run: methods x seeds, scored for `task` (under `protocols` where the task uses them)."""

    methods: Sequence[str]
    protocols: Sequence[str] = ("clean", "missing", "gaussian")
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    method_overrides: dict[str, Any] = field(default_factory=dict)  # applied where a method has the key
    train: TrainConfig = field(default_factory=TrainConfig)  # label noise: train.label_noise
    val_fraction: float = 0.15
    task: str = "classification"
    task_options: dict[str, Any] = field(default_factory=dict)  # e.g. retrieval: objective, cca
    build: ModelBuilder | None = None  # None: methods.build_method
    encoder: Any = None  # raw data only: train.end_to_end.EncoderConfig (None: defaults, end-to-end)

    def __post_init__(self) -> None:
        if isinstance(self.methods, str) or isinstance(self.protocols, str):
            raise PMRFusionError("RunSpec.methods and .protocols are sequences of names, not one string")
        if not 0.0 < self.val_fraction < 1.0:
            raise PMRFusionError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        for s in self.seeds:
            check_seed(s)
        get_task(self.task)

    def check(self) -> None:
        """Unknown method or protocol names fail here, before any training."""
        for m in self.methods:
            method_config(m)
        if get_task(self.task).uses_protocols:
            for proto in self.protocols:
                check_protocol(proto)

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
    method: str,
    prepared: PreparedData,
    seed: int,
    overrides: dict[str, Any],
    tc: TrainConfig,
    build: ModelBuilder | None = None,
) -> tuple[FusionModel, TrainResult]:
    """Build `method` under `seed` (with `build`, default `build_method`) and train it."""
    seed_everything(seed)
    builder = build or build_method
    model = builder(method, prepared.dims, prepared.num_classes, **overrides_for(method, overrides))
    result = train(model, prepared.train, prepared.val, dataclasses.replace(tc, seed=seed))
    return model, result


def evaluate(
    model: FusionModel,
    prepared: PreparedData,
    protocols: Sequence[str],
    seed: int,
    base: dict[str, Any],
) -> list[dict]:
    """Classification records for every metric of every condition of every protocol."""
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


def run_one(
    method: str, prepared: PreparedData, seed: int, spec: RunSpec, dataset: str
) -> tuple[list[dict], TrainResult]:
    """Fit one method on one prepared split and score it for the spec's task."""
    task = get_task(spec.task)
    overrides = {**spec.method_overrides, **task.method_overrides(spec.task_options)}
    model, result = fit_method(method, prepared, seed, overrides, spec.train, spec.build)
    base = {"dataset": dataset, "method": method}
    return task.evaluate(model, prepared, spec.protocols, seed, base, spec.task_options), result


def run_grid(
    data: MultimodalData,
    spec: RunSpec,
    on_cell: Callable[[str, int, float], None] | None = None,
) -> list[dict]:
    """Records for seeds x (task baselines, then methods), in that order.

    Raw data (`RawMultimodalData`: manifests, avmnist) trains encoders + method, see
    `pmrfusion.train.end_to_end.run_raw_grid`.
    """
    spec.check()
    if getattr(data, "task", None) == REGRESSION:
        for m in spec.methods:
            check_regression_method(m)
    if not isinstance(data, MultimodalData):
        from pmrfusion.train.end_to_end import run_raw_grid

        return run_raw_grid(data, spec, on_cell)
    task = get_task(spec.task)
    task.check(data, spec.task_options)
    records: list[dict] = []
    for seed in spec.seeds:
        prepared = prepare(data, spec.val_fraction, seed)
        if task.baselines is not None:
            records.extend(task.baselines(prepared, seed, {"dataset": data.name}, spec.task_options))
        for method in spec.methods:
            t0 = time.perf_counter()
            recs, _ = run_one(method, prepared, seed, spec, data.name)
            records.extend(recs)
            if on_cell is not None:
                on_cell(method, seed, time.perf_counter() - t0)
    return records


register_task(Task("classification", lambda model, prepared, protocols, seed, base, options: evaluate(
    model, prepared, protocols, seed, base)))  # fmt: skip


def _register_builtin_tasks() -> None:
    from pmrfusion.bench import retrieval  # noqa: F401  (registers "retrieval")


_register_builtin_tasks()

__all__ = [
    "TASKS",
    "ModelBuilder",
    "RunSpec",
    "Task",
    "evaluate",
    "fit_method",
    "get_task",
    "overrides_for",
    "register_task",
    "run_grid",
    "run_one",
    "seeded_splits",
]
