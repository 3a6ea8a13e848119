"""Cosine between the task gradient and the preservation gradient at each encoder output V_m
(PMR Fig. 4), over end-to-end training on AV-MNIST.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/avmnist_gradcos.py --out results/avmnist

For a PMR model (sg-concat, rg-concat), every `--every` steps: g_task = d CE / d V_m and
g_pres = d L_preserve / d V_m on the training batch, cosine of the flattened gradients per
modality; the step itself is the trainer's usual one (task + lambda * preservation). Writes
gradcos.csv (method, seed, epoch, step, modality, cosine).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
import torch.nn.functional as F

from pmrfusion.bench.runner import prepare_seed
from pmrfusion.data.loaders import load_dataset
from pmrfusion.methods.encoded import build_model
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.regimes import build_encoders
from pmrfusion.train.trainer import TrainConfig, build_optimizers, optimizer_step, seed_everything


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("results/avmnist"))
    ap.add_argument("--methods", default="sg-concat,rg-concat")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("avmnist")
    cfg = EncoderConfig()
    p = prepare_seed(data, args.seed, 0.15, cfg)
    rows = []
    for method in args.methods.split(","):
        seed_everything(args.seed)
        model = build_model(build_encoders(p, cfg), method, p.num_classes)
        opts = build_optimizers(model, TrainConfig())
        loader = p.train.loader(64, shuffle_seed=args.seed)
        step = 0
        for epoch in range(1, args.epochs + 1):
            model.train()
            for batch in p.train.batches(loader):
                out = model(batch.features, batch.present)
                views = [model.last_encoded[m] for m in model.modalities]
                task = F.cross_entropy(out.logits, batch.labels)
                aux = model.auxiliary_losses(out, batch)
                total = task + sum(model.loss_weights.get(k, 1.0) * v for k, v in aux.items())
                if step % args.every == 0 and "preserve" in aux:
                    gt = torch.autograd.grad(task, views, retain_graph=True, allow_unused=True)
                    gp = torch.autograd.grad(aux["preserve"], views, retain_graph=True, allow_unused=True)
                    for m, a, b in zip(model.modalities, gt, gp):
                        if a is None or b is None:
                            cos = float("nan")
                        else:
                            cos = float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))
                        rows.append({"method": method, "seed": args.seed, "epoch": epoch, "step": step,
                                     "modality": m, "cosine": round(cos, 5)})  # fmt: skip
                optimizer_step(total, opts)
                step += 1
            last = [r["cosine"] for r in rows if r["method"] == method and r["epoch"] == epoch]
            print(method, "epoch", epoch, "mean cosine", sum(last) / max(len(last), 1), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "gradcos.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
