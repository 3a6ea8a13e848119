"""The fusion-model base class and the method registry (core types: `pmrfusion.types`)."""

from __future__ import annotations

import ast
import dataclasses
import math
import os
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.optim import OptimizerSpec
from pmrfusion.types import Batch, ModelOutput


class FusionModel(nn.Module):
    """Base for every registered method.

    Subclasses implement `forward(features, present) -> ModelOutput`. The trainer adds
    `sum_i loss_weights[i] * aux_i` from `auxiliary_losses` to the task loss.
    """

    modalities: list[str]
    loss_weights: dict[str, float]

    def __init__(self, modalities: list[str]):
        super().__init__()
        self.modalities = list(modalities)
        self.loss_weights = {}
        # group name -> optimizer spec the method wants by default (see TrainConfig)
        self.default_group_optimizers: dict[str, OptimizerSpec] = {}

    def auxiliary_losses(self, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        """Unweighted auxiliary losses for this batch (default: those the forward pass made)."""
        return output.aux_losses

    def task_loss(self, output: ModelOutput, batch: Batch) -> Tensor:
        """The task loss the trainer minimises (default: cross-entropy of the fused logits)."""
        return F.cross_entropy(output.logits, batch.labels)

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the trainer before each training epoch (1-based); default: nothing."""

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups that may get their own optimizer (e.g. {"pmr": [...]})."""
        return {}

    def views(self, features: dict[str, Tensor]) -> list[Tensor]:
        missing = [m for m in self.modalities if m not in features]
        if missing:
            raise PMRFusionError(f"input lacks modalities {missing}; model expects {self.modalities}")
        return [features[m] for m in self.modalities]


class EqualDimsModel(FusionModel):
    """A method behind trainable linear maps that take every modality wider than the narrowest to
    the narrowest width (narrower ones pass unchanged), trained with the task: the equal-length
    input regime of PMR 5.2.1 (`equal_dims=true`). Losses, groups and outputs are the method's."""

    def __init__(self, method: FusionModel, dims: dict[str, int]):
        super().__init__(method.modalities)
        self.method = method
        width = min(dims.values())
        self.to_width = nn.ModuleDict({m: nn.Linear(d, width) for m, d in dims.items() if d > width})
        self.loss_weights = method.loss_weights
        self.default_group_optimizers = method.default_group_optimizers

    def __getattr__(self, name: str) -> Any:  # the method's own attributes (e.g. its PMR maps)
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "method":
                raise
            return getattr(self.method, name)

    def narrowed(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """`features` with every wider modality mapped to the narrowest width."""
        return {m: self.to_width[m](x) if m in self.to_width else x for m, x in features.items()}

    def _narrowed_batch(self, batch: Batch) -> Batch:
        return dataclasses.replace(batch, features=self.narrowed(batch.features))

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        return self.method(self.narrowed(features), present)

    def auxiliary_losses(self, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        return self.method.auxiliary_losses(output, self._narrowed_batch(batch))

    def task_loss(self, output: ModelOutput, batch: Batch) -> Tensor:
        return self.method.task_loss(output, self._narrowed_batch(batch))

    def on_epoch_start(self, epoch: int) -> None:
        self.method.on_epoch_start(epoch)

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        return self.method.optimizer_groups()


# Options every registered method takes beside its config's fields (name -> default); they act
# around the method (`build_method`), are typed like a config field of the default's type, and are
# recorded only when set to a value other than the default.
GENERIC_OPTIONS: dict[str, Any] = {
    "equal_dims": False,  # map every modality wider than the narrowest to the narrowest width
}


def split_generic_options(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the method config's own options, the generic options) of `config`."""
    own = {k: v for k, v in config.items() if k not in GENERIC_OPTIONS}
    return own, {k: v for k, v in config.items() if k in GENERIC_OPTIONS}


@dataclass
class MethodSpec:
    name: str
    config_cls: type
    builder: Callable[[dict[str, int], int, Any], FusionModel]
    description: str
    # why the method has no regression form (None: it regresses with num_classes=1)
    classification_only: str | None = None
    # the config fields the method reads, when its config class is shared with other methods
    # (None: every field); the others keep their defaults and setting them is an error
    options: tuple[str, ...] | None = None


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(
    name: str, config_cls: type, description: str, classification_only: str | None = None,
    options: Iterable[str] | None = None,
):  # fmt: skip
    """Decorator: register `builder(dims, num_classes, config) -> FusionModel` under `name`.

    The method's facts are declared here: `classification_only` says why it cannot regress (its
    fusion weights or losses need class probabilities); `options` names the config fields it reads
    when its config class is shared (the rest are not its options). Every int / float option must have an
    allowed range (`field(metadata={"range": ...})` or a shared `OPTION_RANGES` entry): a numeric
    option without one is an error at registration, not an unchecked value later.
    """
    types = _option_types(config_cls)
    unranged = [
        f.name for f in dataclasses.fields(config_cls)
        if types[f.name] in (int, float) and "range" not in f.metadata and f.name not in OPTION_RANGES
    ]  # fmt: skip
    if unranged:
        raise TypeError(f"method '{name}': numeric options {unranged} declare no allowed range")
    used = None if options is None else tuple(options)
    stray = sorted(set(used or ()) - {f.name for f in dataclasses.fields(config_cls)})
    if stray:
        raise TypeError(f"method '{name}': options {stray} are not fields of {config_cls.__name__}")

    def deco(builder):
        _REGISTRY[name] = MethodSpec(name, config_cls, builder, description, classification_only, used)
        return builder

    return deco


def available_methods() -> dict[str, MethodSpec]:
    return dict(_REGISTRY)


# Allowed ranges of method options, by option name: (low, high, low inclusive, high inclusive).
# A config field may override its entry with `field(metadata={"range": (...)})`; a config class
# may add its own checks in a `validate(self)` method (raise PMRFusionError).
WIDTH = {"range": (1, math.inf, True, True)}  # metadata of a `hidden` that is a layer width
REAL = {"range": (-math.inf, math.inf, False, False)}  # any finite number
NONNEGATIVE = {"range": (0.0, math.inf, True, False)}
SEED = {"range": (0, 2**32 - 1, True, True)}
OPTION_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "dropout": (0.0, 1.0, True, False),
    "n": (1, math.inf, True, True),
    "b": (0.0, 1.0, False, False),
    "hidden": (0, math.inf, True, True),  # 0: a linear head (MLPHead); layer widths say >= 1
    "proj_hidden": (0, math.inf, True, True),
    "confid_hidden": (1, math.inf, True, True),
    "embed_dim": (1, math.inf, True, True),
    "token_dim": (1, math.inf, True, True),
    "tokens_per_modality": (1, math.inf, True, True),
    "num_latents": (1, math.inf, True, True),
    "d1": (1, math.inf, True, True),
    "rip_dim": (1, math.inf, True, True),
    "proj_dim": (1, math.inf, True, True),
    "history_size": (0, math.inf, True, True),
    "lam": (0.0, math.inf, True, False),
    "temperature": (0.0, math.inf, False, False),
    "width_ratio": (0.0, math.inf, True, False),
    "contrast_weight": (0.0, math.inf, True, False),
    "tcp_weight": (0.0, math.inf, True, False),
    "blur": (0.0, math.inf, False, False),
    "attn_dropout": (0.0, 1.0, True, False),
    "depth": (1, math.inf, True, True),
    "heads": (1, math.inf, True, True),
    "num_bottlenecks": (1, math.inf, True, True),
    "num_experts": (1, math.inf, True, True),
    "top_k": (1, math.inf, True, True),
    "num_shared_experts": (0, math.inf, True, True),
    "expert_hidden": (0, math.inf, True, True),
    "balance_weight": (0.0, math.inf, True, False),
    "cmd_moments": (1, math.inf, True, True),
    "annealing_step": (0, math.inf, True, True),
    "gamma": (0.0, math.inf, True, False),
    "rank_lam": (0.0, math.inf, True, False),
    "unimodal_weight": (0.0, math.inf, True, False),
    "sim_weight": (0.0, math.inf, True, False),
    "diff_weight": (0.0, math.inf, True, False),
    "recon_weight": (0.0, math.inf, True, False),
    "align_weight": (0.0, math.inf, True, False),
    "distinct_weight": (0.0, math.inf, True, False),
    "pred_views_weight": (0.0, math.inf, True, False),
    "pred_shared_weight": (0.0, math.inf, True, False),
}


def _range_text(lo: float, hi: float, lo_in: bool, hi_in: bool) -> str:
    return f"{'[' if lo_in else '('}{lo}, {'inf' if hi == math.inf else hi}{']' if hi_in else ')'}"


def _option_types(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        hints = {}
    out = {}
    for f in dataclasses.fields(cls):
        t = hints.get(f.name)
        if t not in (bool, int, float, str) and f.default is not dataclasses.MISSING:
            t = type(f.default)
        out[f.name] = t
    return out


def check_option(method: str, key: str, value: Any, cls: type | None = None) -> Any:
    """`value` checked against the declared type and allowed range of option `key` of `method`;
    returns it converted to that type (int -> float is allowed, 2.5 for an int is not)."""
    cls = cls or _spec(method).config_cls
    types = _option_types(cls)
    if key in GENERIC_OPTIONS and key not in types:
        if not isinstance(value, type(GENERIC_OPTIONS[key])):
            raise PMRFusionError(f"method '{method}' option {key}={value!r}: expected true or false")
        return value
    if key not in types:
        raise PMRFusionError(f"method '{method}' has no option '{key}'; options: {', '.join(sorted(types))}")
    t = types[key]
    bad = f"method '{method}' option {key}={value!r}"
    if t is bool:
        if not isinstance(value, bool):
            raise PMRFusionError(f"{bad}: expected true or false")
    elif t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise PMRFusionError(f"{bad}: expected an integer")
    elif t is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PMRFusionError(f"{bad}: expected a number")
        value = float(value)
        if not math.isfinite(value):
            raise PMRFusionError(f"{bad}: expected a finite number")
    elif t is str and not isinstance(value, str):
        raise PMRFusionError(f"{bad}: expected a string")
    field = next(f for f in dataclasses.fields(cls) if f.name == key)
    rng = field.metadata.get("range", OPTION_RANGES.get(key))
    if rng is not None and t in (int, float):
        lo, hi, lo_in, hi_in = rng
        ok = (value >= lo if lo_in else value > lo) and (value <= hi if hi_in else value < hi)
        if not ok:
            raise PMRFusionError(f"{bad} is out of range: allowed {_range_text(*rng)}")
    return value


def parse_option(method: str, key: str, text: str) -> Any:
    """Parse the text of `--set key=text` to the declared type of option `key` of `method`."""
    types = _option_types(_spec(method).config_cls)
    t = types.get(key, type(GENERIC_OPTIONS[key]) if key in GENERIC_OPTIONS else None)
    if t is str:
        value: Any = text
    elif t is bool:
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise PMRFusionError(f"method '{method}' option {key}={text!r}: expected true or false")
        value = low in ("true", "1", "yes")
    else:
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            try:
                value = float(text)  # nan, inf
            except ValueError:
                value = text
    return check_option(method, key, value)


def parse_overrides(methods: Iterable[str], items: Iterable[str]) -> dict[str, Any]:
    """`--set key=value` items -> overrides, each typed and checked for every selected method
    that has the option; a key no selected method has is an error."""
    methods = [parse_variant(m)[0] for m in methods]
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise PMRFusionError(f"--set expects key=value, got '{item}'")
        key, text = (s.strip() for s in item.split("=", 1))
        owners = [m for m in methods if key in option_names(m)]
        if not owners:
            raise PMRFusionError(f"no selected method ({', '.join(methods)}) has an option '{key}'")
        for m in owners:
            out[key] = parse_option(m, key, text)
    return out


def _spec(name: str) -> MethodSpec:
    if name not in _REGISTRY:
        raise PMRFusionError(f"unknown method '{name}': use one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def option_names(name: str) -> list[str]:
    """The options method `name` reads (its config's fields, or the ones it declared)."""
    spec = _spec(name)
    fields = [f.name for f in dataclasses.fields(spec.config_cls)]
    own = fields if spec.options is None else [f for f in fields if f in spec.options]
    return own + [g for g in GENERIC_OPTIONS if g not in fields]


def method_config(name: str, **config: Any):
    """The typed config of method `name`, every override checked for name, type and range; a field
    of a shared config class that the method does not read may only be given at its default
    (as a checkpoint's full config does). Generic options (`GENERIC_OPTIONS`) are checked and
    left out: `build_method` applies them."""
    config, generic = split_generic_options(config)
    for k, v in generic.items():
        check_option(name, k, v)
    cls = _spec(name).config_cls
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = option_names(name)
    unknown = sorted(set(config) - set(fields))
    unused = sorted(k for k in set(config) & set(fields) - set(names) if config[k] != fields[k].default)
    if unknown or unused:
        raise PMRFusionError(
            f"method '{name}' has no option(s) {unknown or unused}; options: {', '.join(sorted(names))}"
        )
    checked = {k: check_option(name, k, v, cls) for k, v in config.items()}
    cfg = cls(**checked)
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def full_method_config(name: str, **config: Any) -> dict[str, Any]:
    """Every option of method `name` under `config` (as a checkpoint stores it): its config's fields
    and the generic options set to a value other than their default."""
    generic = {k: v for k, v in split_generic_options(config)[1].items() if v != GENERIC_OPTIONS[k]}
    return {**dataclasses.asdict(method_config(name, **config)), **generic}


def method_options(method: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The subset of `overrides` (shared by several methods) that are options of `method`."""
    names = set(option_names(method))
    return {k: v for k, v in overrides.items() if k in names}


def parse_variant(name: str) -> tuple[str, dict[str, Any]]:
    """A method variant 'sg-concat[pmr_optimizer=sgd,n=8]' -> ('sg-concat', typed options); a plain
    name -> (name, {}). Each option is parsed and checked like `--set` for that method."""
    if not name.endswith("]") or "[" not in name:
        if "[" in name or "]" in name:
            raise PMRFusionError(f"method variant {name!r}: write name[key=value,...]")
        _spec(name)
        return name, {}
    base, body = name[:-1].split("[", 1)
    _spec(base)
    options: dict[str, Any] = {}
    for item in filter(None, (i.strip() for i in body.split(","))):
        if "=" not in item:
            raise PMRFusionError(f"method variant {name!r}: expected key=value, got '{item}'")
        key, text = (t.strip() for t in item.split("=", 1))
        if key not in option_names(base):
            raise PMRFusionError(f"method variant {name!r}: '{base}' has no option '{key}'")
        options[key] = parse_option(base, key, text)
    method_config(base, **options)
    return base, options


def check_regression_method(name: str) -> None:
    """One clear line, before any training, when method `name` has no regression form."""
    why = _spec(name).classification_only
    if why:
        raise PMRFusionError(f"method '{name}' does not support regression: {why}")


def classification_only_methods() -> dict[str, str]:
    """Method -> why it cannot regress, for every registered classification-only method."""
    return {n: s.classification_only for n, s in _REGISTRY.items() if s.classification_only}


# Parameters x bytes that training needs per parameter (weights, gradients, two Adam moments).
BYTES_PER_TRAINED_PARAMETER = 16


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo, else physical memory, else 16 GiB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def estimate_parameters(name: str, dims: dict[str, int], num_classes: int, **config: Any) -> int | None:
    """Parameter count of the model, built on the `meta` device (no memory); None if it cannot be."""
    count = _count_parameters(name, _inner_dims(dims, config), num_classes, method_config(name, **config))
    if count is None or not config.get("equal_dims", False):
        return count
    width = min(dims.values())
    return count + sum((d + 1) * width for d in dims.values() if d > width)  # the maps to the width


def _count_parameters(name: str, dims: dict[str, int], num_classes: int, cfg: Any) -> int | None:
    try:
        with torch.device("meta"):
            model = _REGISTRY[name].builder(dict(dims), int(num_classes), cfg)
    except PMRFusionError:
        raise
    except Exception:
        return None
    return sum(p.numel() for p in model.parameters())


def check_model_size(name: str, dims: dict[str, int], num_classes: int, **config: Any) -> None:
    """Refuse (before allocation) a model whose training state would not fit in available memory."""
    _check_size(name, _inner_dims(dims, config), num_classes, method_config(name, **config))


def _check_size(name: str, dims: dict[str, int], num_classes: int, cfg: Any) -> None:
    count = _count_parameters(name, dims, num_classes, cfg)
    if count is None:
        return
    need = count * BYTES_PER_TRAINED_PARAMETER
    have = available_memory_bytes()
    if need > have:
        raise PMRFusionError(
            f"method '{name}' would have {count:,} parameters (~{need / 2**30:.1f} GiB to train), "
            f"more than the {have / 2**30:.1f} GiB of memory available"
        )


def check_dims(dims: Any, num_classes: Any) -> None:
    """`dims` a mapping modality name -> int >= 1; `num_classes` an int >= 2, or 1 for a
    regression model (one real output, see `pmrfusion.tasks`)."""
    if not isinstance(dims, dict) or not all(isinstance(m, str) and m for m in dims):
        raise PMRFusionError(f"modality dims must map non-empty names to sizes, got {dims!r}")
    bad = {m: d for m, d in dims.items() if isinstance(d, bool) or not isinstance(d, int) or d < 1}
    if bad:
        raise PMRFusionError(f"modality dimensions must be integers >= 1, got {bad}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise PMRFusionError(
            f"need an integer number of classes >= 2 (or 1 output for regression), got {num_classes!r}"
        )


def _inner_dims(dims: dict[str, int], config: dict[str, Any]) -> dict[str, int]:
    """The dims the method itself sees: all the narrowest under `equal_dims`, else `dims`."""
    if not config.get("equal_dims", False):
        return dict(dims)
    width = min(dims.values())
    return {m: width for m in dims}


def build_method(name: str, dims: dict[str, int], num_classes: int, **config: Any) -> FusionModel:
    """Build a registered method, e.g. `build_method("rg-concat", {"img": 1024, "txt": 300}, 10)`.

    `num_classes=1` builds a regression model (one real output); classification-only methods refuse.
    Options are checked for type and range, and a model too large for memory is refused with its
    parameter count before anything is allocated. `equal_dims=True` puts an `EqualDimsModel` in
    front: every modality wider than the narrowest is mapped to the narrowest width."""
    cfg = method_config(name, **config)
    if len(dims) < 2:
        raise PMRFusionError(f"method '{name}' needs at least 2 modalities, got {len(dims)}")
    dims = {m: int(d) if hasattr(d, "__index__") and not isinstance(d, bool) else d for m, d in dims.items()}
    if hasattr(num_classes, "__index__") and not isinstance(num_classes, bool):
        num_classes = int(num_classes)
    check_dims(dims, num_classes)
    if num_classes == 1:  # regression: one real output (see pmrfusion.tasks)
        check_regression_method(name)
    inner = _inner_dims(dims, config)
    _check_size(name, inner, num_classes, cfg)
    model = _REGISTRY[name].builder(inner, int(num_classes), cfg)
    return EqualDimsModel(model, dims) if config.get("equal_dims", False) else model


def zero_absent(
    features: dict[str, Tensor], present: Tensor | None, modalities: list[str]
) -> dict[str, Tensor]:
    """Absent modalities as zeros in *scaled* space: mean imputation (protocol "missing_mean").

    The papers' zero feature in original units is `pmrfusion.data.absent.fill_absent` with the
    split's `absent_fill`; no method zeroes absent inputs itself (they get `present` instead).
    """
    if present is None:
        return features
    out = {}
    for i, m in enumerate(modalities):
        out[m] = features[m] * present[:, i : i + 1].to(features[m].dtype)
    return out


__all__ = [
    "Batch",
    "EqualDimsModel",
    "FusionModel",
    "GENERIC_OPTIONS",
    "MethodSpec",
    "ModelOutput",
    "available_methods",
    "build_method",
    "check_dims",
    "check_model_size",
    "check_regression_method",
    "classification_only_methods",
    "check_option",
    "estimate_parameters",
    "full_method_config",
    "method_config",
    "method_options",
    "option_names",
    "parse_option",
    "parse_overrides",
    "parse_variant",
    "register_method",
    "split_generic_options",
    "zero_absent",
]
