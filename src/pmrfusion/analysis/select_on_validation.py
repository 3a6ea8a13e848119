"""Compare method variants on the VALIDATION split only (clean, mean leave-one-out, mean keep-one).

Model selection for robustness without touching the test split.
`pmrfusion select-on-validation --dataset handwritten --seeds 3`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pmrfusion.bench.runner import fit_method
from pmrfusion.data.loaders import load_feature_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.eval.protocols import conditions
from pmrfusion.train.trainer import TrainConfig, predict

VARIANTS = [
    ("concat", "concat", {}),
    ("sg-concat default", "sg-concat", {}),
    ("sg-concat lam=10", "sg-concat", {"lam": 10.0}),
    ("sg-concat lam=0", "sg-concat", {"lam": 0.0}),
    ("sg-concat PMR maps on AdamW", "sg-concat", {"pmr_optimizer": "main"}),
]


def select_on_validation(
    dataset: str = "handwritten", seeds: int = 3, print: Callable[..., None] = print
) -> None:
    """Print the validation table, one row per variant as it finishes."""
    torch.set_num_threads(1)
    data = load_feature_dataset(dataset, "select-on-validation")
    num_mods = len(data.modalities)
    print("| variant | val clean | val mean leave-one-out | val mean keep-one |")
    print("|---|---|---|---|")
    for label, method, overrides in VARIANTS:
        clean, loo, keep = [], [], []
        for seed in range(seeds):
            p = prepare(data, 0.15, seed)
            model, _ = fit_method(method, p, seed, overrides, TrainConfig())

            def acc(cond, model=model, p=p) -> float:
                pred = predict(model, cond.features, cond.present).argmax(-1)
                return float((pred == p.val.labels).float().mean())

            clean.append(acc(next(conditions("clean", p.val, seed))))
            missing = list(conditions("missing", p.val, seed))
            loo.append(sum(acc(c) for c in missing if len(c.present_modalities) == num_mods - 1) / num_mods)
            keep.append(sum(acc(c) for c in missing if len(c.present_modalities) == 1) / num_mods)
        mean = lambda v: f"{sum(v) / len(v):.4f}"  # noqa: E731
        print(f"| {label} | {mean(clean)} | {mean(loo)} | {mean(keep)} |", flush=True)
