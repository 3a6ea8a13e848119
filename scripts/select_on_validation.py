"""Compare method variants on the VALIDATION split only (clean, mean leave-one-out, mean keep-one).

Model selection for robustness without touching the test split.
Usage: python scripts/select_on_validation.py --dataset handwritten --seeds 3
"""

from __future__ import annotations

import argparse

import torch

from pmrfusion import TrainConfig, fit_method, load_dataset, predict, prepare
from pmrfusion.eval.protocols import conditions

VARIANTS = [
    ("concat", "concat", {}),
    ("sg-concat default", "sg-concat", {}),
    ("sg-concat lam=10", "sg-concat", {"lam": 10.0}),
    ("sg-concat lam=0", "sg-concat", {"lam": 0.0}),
    ("sg-concat PMR maps on AdamW", "sg-concat", {"pmr_optimizer": "main"}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="handwritten")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.dataset)
    num_mods = len(data.modalities)
    print("| variant | val clean | val mean leave-one-out | val mean keep-one |")
    print("|---|---|---|---|")
    for label, method, overrides in VARIANTS:
        clean, loo, keep = [], [], []
        for seed in range(args.seeds):
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


if __name__ == "__main__":
    main()
