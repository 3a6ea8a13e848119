"""An experiment as a file: grids of the one runner and the tables of its page, in TOML.

    name = "bench"                       # the experiment; its records go to `out`
    title = "Foundation benchmark"
    description = "Prose shown at the top of the page."
    out = "results/bench"                # default runs/<name>
    pool_code_versions = ""              # a reason, if tables may pool cells of different code

    [defaults]                           # every grid starts from these (a grid's keys win)
    seeds = 5                            # 0..4, or a list [0, 1, 2]
    protocols = ["clean", "missing", "gaussian"]
    train = { epochs = 150, patience = 25 }

    [[grid]]
    id = "handwritten"                   # names the grid in records and tables
    dataset = "handwritten"
    methods = ["concat", "sg-concat", "sg-concat[pmr_optimizer=sgd]"]
    set = { hidden = 128 }               # options for every method that has them (`--set`)
    method_options = { qmf = { lam = 1.0 } }
    encoder = { regime = "frozen", encoders = { image = "cnn" } }   # raw inputs only

    [[table]]
    title = "Accuracy (%)"
    metric = "accuracy"
    columns = ["clean", "leave-one-out", "keep-one", "gaussian:10"]
    grids = ["handwritten"]              # default: every grid
    scale = 100
    digits = 2

A grid's keys: `id`, `dataset`, `methods`, `seeds`, `protocols`, `train` (`TrainConfig` fields
but `seed`, `quiet`, `device`, `group_optimizers`), `set`, `method_options`, `val_fraction`, `task`,
`task_options`, `splitting`, `method_train` (a method's own `train` keys, e.g. its learning
rate), `encoder` (`EncoderConfig`: `regime`, `encoders`, `out_dims`,
`widths`, `encoder_lr`, `pretrained_lr`, `pretrain_epochs`, `max_length`). Unknown keys, unknown
names and bad values fail when the file is loaded, before any training (`load_experiment`).
Column selectors are described in `bench.experiment_page.select`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmrfusion.bench.runner import RunSpec, resolve_method
from pmrfusion.bench.task_registry import get_task
from pmrfusion.errors import PMRFusionError, check_distinct
from pmrfusion.methods.base import parse_overrides
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.paths import read_toml
from pmrfusion.train.trainer import TrainConfig, recorded_train_settings, seed_range

EXPERIMENT_KEYS = {"name", "title", "description", "out", "pool_code_versions", "defaults", "grid", "table"}
GRID_KEYS = {
    "id", "dataset", "methods", "seeds", "protocols", "train", "set", "method_options", "val_fraction",
    "task", "task_options", "splitting", "encoder", "method_train", "train_missing",
}  # fmt: skip
TABLE_KEYS = {"title", "metric", "columns", "grids", "methods", "scale", "digits", "note"}
TRAIN_EXCLUDED = {"seed", "quiet", "device", "group_optimizers"}  # not results-bearing or not TOML
ENCODER_KEYS = {"regime", "encoders", "out_dims", "widths", "encoder_lr", "pretrained_lr",
                "pretrain_epochs", "max_length"}  # fmt: skip


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(name: str, what: str) -> str:
    """`name` if it is safe as a file-name component and a table label (letters, digits, . _ -)."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise PMRFusionError(f"{what} '{name}' must be 1-64 letters, digits, '.', '_' or '-'")
    return name


def _unknown(given: Mapping[str, Any], allowed: set[str], where: str) -> None:
    stray = sorted(set(given) - allowed)
    if stray:
        raise PMRFusionError(f"{where}: unknown key(s) {stray}; allowed: {', '.join(sorted(allowed))}")


def _names(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PMRFusionError(f"{where} must be a list of names, got {value!r}")
    check_distinct(value, where)
    return list(value)


@dataclass(frozen=True)
class Grid:
    """One run of the runner: a dataset and a `RunSpec` (methods x seeds under protocols)."""

    id: str
    dataset: str
    spec: RunSpec
    settings: dict[str, Any]  # the resolved, results-bearing settings (hashed per cell)

    def cell_settings(self, method: str) -> dict[str, Any]:
        """The settings that decide `method`'s records in this grid (hashed into `config_hash`)."""
        name, options = resolve_method(method, self.spec.method_overrides)
        own = self.spec.method_options.get(method, {})
        settings = {**self.settings, "method": method, "registered": name, "options": {**options, **own}}
        if method in self.spec.method_train:
            settings["train"] = _results_train(self.spec.method_train[method])
        return settings


@dataclass(frozen=True)
class Table:
    """A table of the page: rows (grid, method), one column per condition selector."""

    title: str
    metric: str
    columns: list[str]
    grids: list[str]
    methods: list[str] | None = None
    scale: float = 1.0
    digits: int = 4
    note: str = ""


@dataclass(frozen=True)
class Experiment:
    """A loaded, checked experiment file."""

    name: str
    path: Path
    title: str
    description: str
    out: Path
    grids: list[Grid]
    tables: list[Table] = field(default_factory=list)
    pool_code_versions: str = ""

    def grid(self, grid_id: str) -> Grid:
        for g in self.grids:
            if g.id == grid_id:
                return g
        raise PMRFusionError(
            f"experiment '{self.name}' has no grid '{grid_id}': {[g.id for g in self.grids]}"
        )


def _train_config(values: Mapping[str, Any], where: str) -> TrainConfig:
    allowed = {f.name for f in dataclasses.fields(TrainConfig)} - TRAIN_EXCLUDED
    _unknown(values, allowed, f"{where}.train")
    try:
        return TrainConfig(**values)
    except TypeError as e:
        raise PMRFusionError(f"{where}.train: {e}") from None


def _results_train(train: TrainConfig) -> dict[str, Any]:
    """The results-bearing fields of a training config (hashed)."""
    settings = {k: v for k, v in dataclasses.asdict(train).items() if k not in TRAIN_EXCLUDED}
    return recorded_train_settings(settings)


def _encoder_config(values: Mapping[str, Any] | None, where: str) -> EncoderConfig | None:
    if values is None:
        return None
    _unknown(values, ENCODER_KEYS, f"{where}.encoder")
    return EncoderConfig(**values)


def _seeds(value: Any, where: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return seed_range(value)
    if isinstance(value, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        return list(value)
    raise PMRFusionError(f"{where}.seeds must be a number of seeds or a list of seeds, got {value!r}")


def _grid(raw: Mapping[str, Any], defaults: Mapping[str, Any], index: int) -> Grid:
    where = f"grid {index + 1}"
    _unknown(raw, GRID_KEYS, where)
    g = {**defaults, **raw}
    g["train"] = {**defaults.get("train", {}), **raw.get("train", {})}
    for key in ("id", "dataset", "methods"):
        if key not in g:
            raise PMRFusionError(f"{where} lacks '{key}'")
    grid_id = check_name(str(g["id"]), f"{where}.id")
    where = f"grid '{grid_id}'"
    methods = _names(g["methods"], f"{where}.methods")
    protocols = _names(g.get("protocols", ["clean", "missing", "gaussian"]), f"{where}.protocols")
    train = _train_config(g["train"], where)
    encoder = _encoder_config(g.get("encoder"), where)
    set_options = g.get("set", {})
    overrides = parse_overrides(methods, [f"{k}={v}" for k, v in set_options.items()]) if set_options else {}
    spec = RunSpec(
        methods=methods, protocols=protocols, seeds=_seeds(g.get("seeds", 3), where),
        method_overrides=overrides, train=train, val_fraction=float(g.get("val_fraction", 0.15)),
        task=str(g.get("task", "classification")), task_options=dict(g.get("task_options", {})),
        encoder=encoder, splitting=str(g.get("splitting", "standard")),
        method_options={m: dict(o) for m, o in g.get("method_options", {}).items()},
        method_train={m: _train_config({**g["train"], **o}, f"{where}.method_train.{m}")
                      for m, o in g.get("method_train", {}).items()},
        train_missing=float(g.get("train_missing", 0.0)),
    )  # fmt: skip
    spec.check()
    results_train = _results_train(train)
    settings = {
        "dataset": str(g["dataset"]), "protocols": protocols if get_task(spec.task).uses_protocols else [],
        "train": results_train, "val_fraction": spec.val_fraction, "task": spec.task,
        "task_options": spec.task_options, "splitting": spec.splitting,
        "encoder": dataclasses.asdict(encoder) if encoder is not None else None,
    }  # fmt: skip
    if spec.train_missing:  # hashed only when set: earlier cells keep their config hash
        settings["train_missing"] = spec.train_missing
    return Grid(grid_id, str(g["dataset"]), spec, settings)


def _check_columns(columns: list[str], grids: list[Grid], where: str) -> None:
    """Column selectors that cannot match any record of the table's grids fail at load time
    (tasks without protocols, such as retrieval, name their own conditions: not checked)."""
    if not all(get_task(g.spec.task).uses_protocols for g in grids):
        return
    protocols = {p for g in grids for p in g.spec.protocols}
    known = protocols | {"train"} | ({"keep"} if "missing" in protocols else set())
    for column in columns:
        group, _, protocol = column.partition("@")
        if group in ("leave-one-out", "keep-one"):
            ok = (protocol or "missing") in protocols
        else:
            ok = column.partition(":")[0] in known
        if not ok:
            names = ", ".join(sorted(protocols))
            raise PMRFusionError(f"{where}: column '{column}' matches no protocol of its grids: {names}")


def _table(raw: Mapping[str, Any], grid_ids: list[str], index: int) -> Table:
    where = f"table {index + 1}"
    _unknown(raw, TABLE_KEYS, where)
    for key in ("title", "metric", "columns"):
        if key not in raw:
            raise PMRFusionError(f"{where} lacks '{key}'")
    grids = _names(raw.get("grids", grid_ids), f"{where}.grids")
    unknown = sorted(set(grids) - set(grid_ids))
    if unknown:
        raise PMRFusionError(f"{where}.grids names unknown grids {unknown}: {grid_ids}")
    methods = _names(raw["methods"], f"{where}.methods") if "methods" in raw else None
    return Table(
        str(raw["title"]), str(raw["metric"]), _names(raw["columns"], f"{where}.columns"), grids, methods,
        float(raw.get("scale", 1.0)), int(raw.get("digits", 4)), str(raw.get("note", "")),
    )  # fmt: skip


def load_experiment(path: str | Path, root: str | Path | None = None) -> Experiment:
    """Read and check an experiment file; `out` is relative to `root` (default: the current folder)."""
    path = Path(path)
    raw = read_toml(path, "experiment file")
    _unknown(raw, EXPERIMENT_KEYS, str(path))
    if "name" not in raw:
        raise PMRFusionError(f"{path} lacks 'name'")
    name = check_name(str(raw["name"]), "experiment name")
    defaults = raw.get("defaults", {})
    _unknown(defaults, GRID_KEYS - {"id"}, f"{path} [defaults]")
    grids_raw = raw.get("grid", [])
    if not grids_raw:
        raise PMRFusionError(f"{path} has no [[grid]]")
    grids = [_grid(g, defaults, i) for i, g in enumerate(grids_raw)]
    check_distinct([g.id for g in grids], "grid ids")
    tables = [_table(t, [g.id for g in grids], i) for i, t in enumerate(raw.get("table", []))]
    by_id = {g.id: g for g in grids}
    for i, t in enumerate(tables):
        _check_columns(t.columns, [by_id[g] for g in t.grids], f"table {i + 1} ('{t.title}')")
    out = Path(raw.get("out", f"runs/{name}"))
    if root is not None and not out.is_absolute():
        out = Path(root) / out
    return Experiment(
        name, path, str(raw.get("title", name)), str(raw.get("description", "")).strip(), out, grids, tables,
        str(raw.get("pool_code_versions", "")),
    )  # fmt: skip
