"""Unimodal linear probes of AV-MNIST encoders (PMR Tables 5-6, "Unimodal lin.").

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/avmnist_probes.py --out results/avmnist

For each seed: an encoder trained alone (unimodal, linear head) and the encoders trained
inside each end-to-end multimodal model; each encoder is then frozen and a logistic-regression
probe is fitted on its training-row outputs V_m and scored on the test rows. Writes probes.csv.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pmrfusion.bench.runner import fit_method, prepare_seed
from pmrfusion.data.loaders import load_dataset
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.regimes import fit_unimodal
from pmrfusion.train.trainer import TrainConfig


@torch.no_grad()
def outputs(encoder, split, modality: str) -> np.ndarray:
    encoder.eval()
    parts = [encoder(b.features[modality]) for b in split.batches(split.loader(512))]
    return torch.cat(parts).numpy()


def probe(encoder, prepared, modality: str) -> float:
    xtr = outputs(encoder, prepared.train.only([modality]), modality)
    xte = outputs(encoder, prepared.test.only([modality]), modality)
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=500).fit(sc.transform(xtr), prepared.train.labels.numpy())
    return float(clf.score(sc.transform(xte), prepared.test.labels.numpy()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("results/avmnist"))
    ap.add_argument("--methods", default="concat,late,sg-concat,rg-concat")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("avmnist")
    cfg = EncoderConfig()
    tc = TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-3)
    rows = []
    for seed in range(args.seeds):
        p = prepare_seed(data, seed, 0.15, cfg)
        for m in p.modalities:
            clf, _ = fit_unimodal(m, p, seed, tc, cfg)
            acc = probe(clf.encoder, p, m)
            rows.append({"seed": seed, "model": "unimodal", "modality": m, "probe_accuracy": acc})
            print(rows[-1], flush=True)
        for method in args.methods.split(","):
            model, _ = fit_method(method, p, seed, {}, tc, encoder=cfg)
            for m in p.modalities:
                acc = probe(model.encoders[m], p, m)
                rows.append({"seed": seed, "model": method, "modality": m, "probe_accuracy": acc})
                print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "probes.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows([{**r, "probe_accuracy": round(r["probe_accuracy"], 4)} for r in rows])


if __name__ == "__main__":
    main()
