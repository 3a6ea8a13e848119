"""The one experiment runner: prepare a seed, fit a method, score it for a task; for every data kind.

Every experiment of the package (`bench`, `suite`, `train`, retrieval, the dynamic-fusion benchmark,
the analyses) goes through `fit_method` + a task's evaluation, usually via `run_grid`:

    data --model_inputs--> data (text tokenised for token encoders) --prepare (per seed)-->
    PreparedData --fit_method--> model --task.evaluate (per protocol condition)--> records

- Feature vectors and raw inputs take the same path; only the model differs: a registered method
  built on the feature dims (`methods.build_method`, or `RunSpec.build`), or encoders + the method
  (`train.regimes.build_encoded`, under `RunSpec.encoder`'s regime) for raw inputs.
- A method may be a *variant*, `name[key=value,...]` (`methods.base.parse_variant`): its own
  options on top of the spec's shared `method_overrides`; records name the variant.
- A **task** (`bench.task_registry`) says how a trained model is scored: "classification" (every
  condition of every protocol; `task_metrics` gives the regression metrics for a regression
  dataset) and "retrieval" (`bench.retrieval`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pmrfusion.bench.task_registry import TASKS, Task, get_task, register_task
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.labelled import require_labels
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import PreparedData, prepare
from pmrfusion.data.presence import drop_training_modalities
from pmrfusion.data.raw import RawMultimodalData
from pmrfusion.data.splitting import check_splitting, prepare_split
from pmrfusion.errors import PMRFusionError, check_distinct
from pmrfusion.eval.protocols import check_protocol, conditions
from pmrfusion.eval.regression_metrics import task_metrics
from pmrfusion.methods.base import (
    FusionModel,
    build_method,
    check_regression_method,
    method_config,
    method_options,
    parse_variant,
)
from pmrfusion.modules.composition import (
    EncoderConfig,
    ModalityEncoder,
    encoder_names,
    parse_encoder_spec,
    with_encoder_inputs,
)
from pmrfusion.modules.encoders import available_encoders, encoder_spec
from pmrfusion.tasks import REGRESSION
from pmrfusion.train.regimes import build_encoded, pretrain_encoders
from pmrfusion.train.trainer import TrainConfig, TrainResult, check_seed, predict, seed_everything, train

# (method, dims, num_classes, **options) -> model; the default is `build_method`
ModelBuilder = Callable[..., FusionModel]


@dataclass
class RunSpec:
    """What to run: methods (or variants) x seeds, scored for `task` (under `protocols` where the
    task uses them); `encoder` sets the encoders and regime of raw inputs (None: defaults)."""

    methods: Sequence[str]
    protocols: Sequence[str] = ("clean", "missing", "gaussian")
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    method_overrides: dict[str, Any] = field(default_factory=dict)  # applied where a method has the key
    train: TrainConfig = field(default_factory=TrainConfig)  # label noise: train.label_noise
    val_fraction: float = 0.15
    task: str = "classification"
    task_options: dict[str, Any] = field(default_factory=dict)  # e.g. retrieval: objective, cca
    build: ModelBuilder | None = None  # None: methods.build_method (feature vectors only)
    encoder: EncoderConfig | None = None  # raw inputs only (None: defaults, end-to-end)
    splitting: str = "standard"  # how each seed's splits are made (`data.splitting`; "rcml")
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> its own options
    method_train: dict[str, TrainConfig] = field(default_factory=dict)  # method -> its training config
    # Incomplete training data: each training sample loses each modality independently with this
    # probability (seeded by the run seed; never all of a sample's), through the presence matrix
    # of the training rows only (`data.presence.drop_training_modalities`); the test split is unchanged.
    train_missing: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.methods, str) or isinstance(self.protocols, str):
            raise PMRFusionError("RunSpec.methods and .protocols are sequences of names, not one string")
        if not 0.0 < self.val_fraction < 1.0:
            raise PMRFusionError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        for s in self.seeds:
            check_seed(s)
        check_distinct(self.methods, "methods")
        check_distinct(self.seeds, "seeds")
        get_task(self.task)
        check_splitting(self.splitting)
        if not 0.0 <= self.train_missing < 1.0:
            raise PMRFusionError(f"train_missing must be in [0, 1), got {self.train_missing}")
        for what in (self.method_options, self.method_train):
            stray = sorted(set(what) - set(self.methods))
            if stray:
                raise PMRFusionError(f"settings for methods {stray} that are not selected")

    def check(self) -> None:
        """Unknown method, variant option or protocol names fail here, before any training."""
        for m in self.methods:
            name, own = parse_variant(m)
            method_config(name, **{**self.method_options.get(m, {}), **own})
        if get_task(self.task).uses_protocols:
            for proto in self.protocols:
                check_protocol(proto)

    def check_data(self, data: MultimodalData | RawMultimodalData) -> None:
        """What the data kind and task allow, before any training."""
        self.check()
        require_labels(data, "training and benchmarks")
        task = get_task(self.task)
        raw = isinstance(data, RawMultimodalData)
        if data.task == REGRESSION:
            for m in self.methods:
                check_regression_method(parse_variant(m)[0])
        if raw and (task.feature_vectors_only or self.build is not None):
            what = f"task '{task.name}'" if task.feature_vectors_only else "RunSpec.build"
            raise PMRFusionError(f"{what} works on feature vectors; '{data.name}' holds raw inputs")
        if not raw and self.encoder is not None:
            raise PMRFusionError("RunSpec.encoder (encoders, regime) applies to raw inputs only")
        if raw and task.uses_protocols:
            for proto in self.protocols:
                check_protocol(proto, raw=True)
        check_splitting(self.splitting, data)
        task.check(data, self.task_options)

    def train_for(self, method: str) -> TrainConfig:
        """The training config of `method` (its own, else the shared one)."""
        return self.method_train.get(method, self.train)

    @property
    def label_noise(self) -> float:
        """Fraction of training labels flipped (seeded), see `TrainConfig.label_noise`."""
        return self.train.label_noise


def resolve_method(method: str, overrides: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(registered name, options) of `method` (a name or a variant): the shared overrides it
    accepts, then the variant's own."""
    name, own = parse_variant(method)
    return name, {**method_options(name, overrides), **own}


def overrides_for(method: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The options of `method` (see `resolve_method`)."""
    return resolve_method(method, overrides)[1]


def encoder_config_for(
    data: MultimodalData | RawMultimodalData, encoders: str | None, regime: str
) -> EncoderConfig | None:
    """The CLI's `--encoders` / `--regime` as an EncoderConfig (None for feature datasets), checked."""
    if not isinstance(data, RawMultimodalData):
        if encoders is not None or regime != "end-to-end":
            raise PMRFusionError("--encoders and --regime apply to raw datasets (manifests, avmnist) only")
        return None
    cfg = EncoderConfig(regime=regime, encoders=parse_encoder_spec(encoders))
    unknown = sorted(set(cfg.encoders) - set(data.modalities))
    if unknown:
        raise PMRFusionError(f"--encoders names unknown modalities {unknown}; dataset has {data.modalities}")
    bad = sorted(set(cfg.encoders.values()) - set(available_encoders()))
    if bad:
        names = ", ".join(sorted(available_encoders()))
        raise PMRFusionError(f"unknown encoder(s) {bad}: use one of {names}")
    for name in encoder_names(data, cfg.encoders).values():  # kinds match, extras installed
        encoder_spec(name).check_available()
    return cfg


def model_inputs(
    data: MultimodalData | RawMultimodalData, encoder: EncoderConfig | None = None
) -> MultimodalData | RawMultimodalData:
    """`data` as the models read it: raw text tokenised at decode time for token encoders
    (`with_encoder_inputs`); feature vectors unchanged."""
    if not isinstance(data, RawMultimodalData):
        return data
    cfg = encoder or EncoderConfig()
    return with_encoder_inputs(data, cfg.encoders, cfg.max_length)


def prepare_seed(
    data: MultimodalData | RawMultimodalData, seed: int, val_fraction: float = 0.15,
    encoder: EncoderConfig | None = None,
) -> PreparedData:  # fmt: skip
    """`prepare` of `model_inputs(data)` for one seed (raw inputs: the encoder config's settings)."""
    cfg = encoder or EncoderConfig()
    return prepare(model_inputs(data, encoder), val_fraction, seed, cfg.frontend, cfg.loader)


def seeded_splits(
    dataset: str, seeds: int, data_root: str | None = None, val_fraction: float = 0.15
) -> Iterator[tuple[int, PreparedData]]:
    """(seed, prepared data) for seeds 0..seeds-1: validation split and scaling made per seed."""
    data = load_dataset(dataset, data_root)
    for seed in range(seeds):
        yield seed, prepare_seed(data, seed, val_fraction)


def build_for(
    method: str, prepared: PreparedData, seed: int, overrides: dict[str, Any], tc: TrainConfig,
    build: ModelBuilder | None = None, encoder: EncoderConfig | None = None,
    pretrained: dict[str, ModalityEncoder] | None = None,
) -> FusionModel:  # fmt: skip
    """The untrained model of `method` for `prepared` (call after seeding): the method on the feature
    dims, or encoders + the method on raw inputs."""
    name, options = resolve_method(method, overrides)
    if prepared.raw:
        return build_encoded(name, prepared, seed, options, tc, encoder or EncoderConfig(), pretrained)
    return (build or build_method)(name, prepared.dims, prepared.num_classes, **options)


def fit_method(
    method: str,
    prepared: PreparedData,
    seed: int,
    overrides: dict[str, Any],
    tc: TrainConfig,
    build: ModelBuilder | None = None,
    encoder: EncoderConfig | None = None,
    pretrained: dict[str, ModalityEncoder] | None = None,
) -> tuple[FusionModel, TrainResult]:
    """Build `method` (a name or a variant) under `seed` and train it on `prepared`'s splits."""
    seed_everything(seed)
    model = build_for(method, prepared, seed, overrides, tc, build, encoder, pretrained)
    result = train(model, prepared.train, prepared.val, dataclasses.replace(tc, seed=seed))
    return model, result


def evaluate(
    model: FusionModel,
    prepared: PreparedData,
    protocols: Sequence[str],
    seed: int,
    base: dict[str, Any],
) -> list[dict]:
    """Records for every metric (classification or regression) of every condition of every protocol."""
    records = []
    labels = prepared.test.labels
    batch_size = prepared.test.eval_batch_size
    for proto in protocols:
        for cond in conditions(proto, prepared, seed):
            logits = predict(model, cond.features, cond.present, batch_size=batch_size)
            for metric, value in task_metrics(logits, labels, prepared.num_classes).items():
                records.append({**base, "protocol": proto, "condition": cond.name,
                                "present": cond.present_modalities, "seed": seed,
                                "metric": metric, "value": value})  # fmt: skip
    return records


def base_record(dataset: str, method: str, encoder: EncoderConfig | None, raw: bool) -> dict[str, Any]:
    """The fields every record of one fitted model starts with (raw inputs add the regime)."""
    base = {"dataset": dataset, "method": method}
    if raw:
        base["regime"] = (encoder or EncoderConfig()).regime
    return base


def run_one(
    method: str, prepared: PreparedData, seed: int, spec: RunSpec, dataset: str,
    pretrained: dict[str, ModalityEncoder] | None = None,
) -> tuple[list[dict], TrainResult]:  # fmt: skip
    """Fit one method on one prepared split and score it for the spec's task."""
    task = get_task(spec.task)
    overrides = {**spec.method_overrides, **task.method_overrides(spec.task_options),
                 **spec.method_options.get(method, {})}  # fmt: skip
    model, result = fit_method(method, prepared, seed, overrides, spec.train_for(method), spec.build,
                               spec.encoder, pretrained)  # fmt: skip
    base = base_record(dataset, method, spec.encoder, prepared.raw)
    return task.evaluate(model, prepared, spec.protocols, seed, base, spec.task_options), result


def run_grid(
    data: MultimodalData | RawMultimodalData,
    spec: RunSpec,
    on_cell: Callable[[str, int, float], None] | None = None,
    skip: Collection[tuple[str, int]] = (),
    on_records: Callable[[str, int, list[dict]], None] | None = None,
    on_fit: Callable[[str, int, list[dict], TrainResult, float], None] | None = None,
) -> list[dict]:
    """Records for seeds x (task baselines, then methods), in that order, for any data kind.

    Each seed's splits come from `spec.splitting`. Raw inputs outside the end-to-end regime
    pre-train their encoders once per seed, shared by every method of that seed. (method, seed)
    pairs in `skip` are not run (already done elsewhere); `on_records(method, seed, records)`
    hears each fitted cell's records as soon as they exist; `on_fit(method, seed, records, result,
    seconds)` also gets the training result and the cell's wall time.
    """
    spec.check_data(data)
    task = get_task(spec.task)
    cfg = spec.encoder or EncoderConfig()
    inputs = model_inputs(data, spec.encoder)
    records: list[dict] = []
    for seed in spec.seeds:
        seed_inputs = drop_training_modalities(inputs, spec.train_missing, seed)
        prepared = prepare_split(
            spec.splitting, seed_inputs, seed, spec.val_fraction, cfg.frontend, cfg.loader
        )
        if task.baselines is not None:
            records.extend(task.baselines(prepared, seed, {"dataset": data.name}, spec.task_options))
        pretrained = None
        if prepared.raw and cfg.regime != "end-to-end":
            pretrained = pretrain_encoders(prepared, seed, spec.train, cfg)
        for method in spec.methods:
            if (method, seed) in skip:
                continue
            t0 = time.perf_counter()
            recs, result = run_one(method, prepared, seed, spec, data.name, pretrained)
            records.extend(recs)
            seconds = time.perf_counter() - t0
            if on_records is not None:
                on_records(method, seed, recs)
            if on_fit is not None:
                on_fit(method, seed, recs, result, seconds)
            if on_cell is not None:
                on_cell(method, seed, seconds)
    return records


register_task(Task("classification", lambda model, prepared, protocols, seed, base, options: evaluate(
    model, prepared, protocols, seed, base)))  # fmt: skip

__all__ = [
    "TASKS",
    "ModelBuilder",
    "RunSpec",
    "Task",
    "base_record",
    "build_for",
    "encoder_config_for",
    "evaluate",
    "fit_method",
    "get_task",
    "model_inputs",
    "overrides_for",
    "prepare_seed",
    "register_task",
    "resolve_method",
    "run_grid",
    "run_one",
    "seeded_splits",
]
