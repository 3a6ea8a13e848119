"""Choose PMR's optimizer reading on the VALIDATION split only (issue 8, item 1).

    python scripts/select_pmr_optimizer.py --datasets cub,handwritten --seeds 3 \
        --out results/pmr_fidelity/optimizer_selection.csv

For every dataset x method x reading x seed: best validation accuracy (early stopping on the
validation split, the test split is never touched), L_preserve in the first and last epoch,
and the mean relative movement of the PMR weights.
"""

from __future__ import annotations

import argparse
import csv

import torch

import pmrfusion as pf

READINGS = ("sgd", "main", "main+sgd")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="cub,handwritten")
    ap.add_argument("--methods", default="sg-concat,rg-concat")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for ds in args.datasets.split(","):
        data = pf.load_dataset(ds)
        for seed in range(args.seeds):
            prepared = pf.prepare(data, 0.15, seed)
            for method in args.methods.split(","):
                for reading in READINGS:
                    pf.seed_everything(seed)
                    model = pf.build_method(
                        method, prepared.dims, prepared.num_classes, pmr_optimizer=reading
                    )
                    start = {k: v.detach().clone() for k, v in model.pmr.state_dict().items()}
                    tc = pf.TrainConfig(epochs=args.epochs, seed=seed)
                    result = pf.train(model, prepared.train, prepared.val, tc)
                    moved = [
                        float((v - start[k]).norm() / start[k].norm().clamp_min(1e-12))
                        for k, v in model.pmr.state_dict().items()
                    ]
                    hist = result.history
                    rows.append(
                        dict(
                            dataset=ds,
                            method=method,
                            pmr_optimizer=reading,
                            seed=seed,
                            val_accuracy=round(result.best_val_accuracy, 4),
                            best_epoch=result.best_epoch,
                            preserve_first=round(hist[0]["preserve"], 4),
                            preserve_last=round(hist[-1]["preserve"], 4),
                            weight_move=round(sum(moved) / len(moved), 4),
                        )
                    )
                    print(rows[-1], flush=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
