"""Tasks of the runner: how a trained model is scored on a prepared test split.

A task (`register_task(Task(...))`) gives an `evaluate` (model, prepared, protocols, seed, base
record fields, task options -> records), optional model-free `baselines` per seed, what it adds
to every method's options, and a check of the data and options made before any training.
"classification" (the default, every condition of every protocol; regression datasets get the
regression metrics from the same evaluation) lives in `bench.runner`; "retrieval" in
`bench.retrieval`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pmrfusion.data.prepared import PreparedData
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import FusionModel

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
    check: Callable[[object, dict], None] = lambda data, options: None  # noqa: E731
    feature_vectors_only: bool = False  # refuses raw inputs (e.g. retrieval reads feature tensors)


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise PMRFusionError(f"unknown task '{name}': use one of {', '.join(sorted(TASKS))}")
    return TASKS[name]


__all__ = ["TASKS", "Baselines", "Evaluator", "Task", "get_task", "register_task"]
