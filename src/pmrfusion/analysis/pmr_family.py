"""Small 5-seed benchmark of the PMR family (the page results/pmr-family/README.md).

- Wikipedia retrieval: cmmp, rg-cmmp (contrastive objective) vs scikit-learn CCA.
- CUB: concat, sg-concat, cmmp, sg-cmmp, rg-cmmp; clean and keep-one accuracy.
- PIE: the 7-subset missing table for concat, late, sg-concat, rg-cmmp, rg-umoe, rg-srht.

Every model early-stops on a validation split carved from train (15%); the test split is
only used for the reported numbers. Raw records are cached in RAW_DIR/*.json (default runs/pmr_family).

    pmrfusion bench-pmr-family [--seeds 5] [--epochs 60] [--only wiki,cub,pie] [--out PAGE.md]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pmrfusion.bench.records import format_mean_std_worst
from pmrfusion.bench.retrieval import retrieval_table, run_retrieval
from pmrfusion.bench.runner import RunSpec, run_grid
from pmrfusion.data.loaders import load_dataset
from pmrfusion.paths import atomic_write_text
from pmrfusion.train.trainer import TrainConfig


def stats(vals):
    return format_mean_std_worst(vals)


def pivot(records, conds, methods, metric="accuracy"):
    cell = {}
    for r in records:
        if r["metric"] == metric:
            cell.setdefault((r["condition"], r["method"]), []).append(r["value"])
    lines = ["| condition | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for c in conds:
        lines.append(
            f"| {c} | " + " | ".join(stats(cell[(c, m)]) if (c, m) in cell else "" for m in methods) + " |"
        )
    return "\n".join(lines)


def mean_of(records, method, conds, metric="accuracy"):
    per_seed = {}
    for r in records:
        if r["method"] == method and r["metric"] == metric and r["condition"] in conds:
            per_seed.setdefault(r["seed"], []).append(r["value"])
    return np.array([np.mean(v) for v in per_seed.values()])


def nseeds(records) -> int:
    return len({r["seed"] for r in records})


def load_or_run(raw: Path, name, fn, log: Callable[[str], None] = print):
    path = raw / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    recs = fn()
    atomic_write_text(path, json.dumps(recs))
    log(f"{name}: {len(recs)} records in {time.perf_counter() - t0:.0f}s")
    return recs


SECTIONS = ("wiki", "cub", "pie")


def pmr_family_page(
    seeds: int = 5,
    epochs: int = 60,
    patience: int = 15,
    only: str = "wiki,cub,pie",
    raw: Path = Path("runs/pmr_family"),
    log: Callable[[str], None] = print,
) -> str:
    """The PMR-family results page (markdown); raw records cached under `raw`."""
    torch.set_num_threads(1)
    n_seeds = seeds
    seeds = list(range(n_seeds))
    tc = TrainConfig(epochs=epochs, patience=patience, batch_size=64)
    parts = only.split(",")
    md = [
        "# PMR family: small benchmark",
        "",
        f"Produced by `pmrfusion bench-pmr-family` (up to {epochs} epochs, "
        f"early stopping with patience {patience} on a 15% validation split carved from train; "
        "AdamW lr 1e-3, batch 64; PMR parameters use the paper's extra SGD (lr 2.5e-4) by default). "
        "Cells: mean ± sample std over seeds (worst seed); the seed count of each section is in its heading. "
        "Features are standardised on train rows; absent "
        "modalities are zeros (the papers' protocol).",
        "",
    ]
    if "wiki" in parts:
        data = load_dataset("wikipedia")
        wtc = TrainConfig(epochs=epochs, patience=patience, batch_size=128)
        recs = load_or_run(
            raw, "wikipedia", lambda: run_retrieval(data, ["cmmp", "rg-cmmp", "sg-cmmp"], seeds, wtc)
        )
        md += [
            f"## Wikipedia retrieval ({nseeds(recs)} seeds; 2173 train / 693 test pairs, img 128-d SIFT-BoW, "
            "txt 10-d LDA)",
            "",
            "Objective: InfoNCE only for the embeddings (+ preservation for PMR); the classifier is a "
            "detached probe used for early stopping. mAP: category-match relevance over the whole test "
            "gallery; R@k: the paired item within the top k. CCA: scikit-learn CCA, 10 components, fitted "
            "on the same scaled train rows.",
            "",
            retrieval_table(
                recs,
                [
                    "img2txt:mAP",
                    "txt2img:mAP",
                    "mean:mAP",
                    "img2txt:mAP@50",
                    "txt2img:mAP@50",
                    "img2txt:R@10",
                    "txt2img:R@10",
                    "img2txt:R@50",
                    "txt2img:R@50",
                ],
            ),
        ]
    if "cub" in parts:
        data = load_dataset("cub")
        methods = ["concat", "sg-concat", "cmmp", "sg-cmmp", "rg-cmmp"]
        spec = RunSpec(methods=methods, protocols=("clean", "missing"), seeds=seeds, train=tc)
        recs = load_or_run(raw, "cub", lambda: run_grid(data, spec), log)
        # with two modalities, keep-one = the other one missing
        conds = ["clean", "missing:txt", "missing:img"]
        md += [
            f"## CUB ({nseeds(recs)} seeds; 10 classes, 480 train / 120 test; img 1024, txt 300): accuracy",
            "",
            pivot(recs, conds, methods),
            "",
            "`missing:txt` = image only, `missing:img` = text only. Mean keep-one accuracy: "
            + ", ".join(f"{m} {mean_of(recs, m, conds[1:]).mean():.4f}" for m in methods),
            "",
        ]
    if "pie" in parts:
        data = load_dataset("pie")
        methods = ["concat", "late", "sg-concat", "rg-cmmp", "rg-umoe", "rg-srht"]
        spec = RunSpec(methods=methods, protocols=("clean", "missing"), seeds=seeds, train=tc)
        recs = load_or_run(raw, "pie", lambda: run_grid(data, spec), log)
        conds = list(dict.fromkeys(r["condition"] for r in recs))
        md += [
            f"## PIE ({nseeds(recs)} seeds; 68 classes, 544 train / 136 test; "
            "intensity 484, lbp 256, gabor 279): "
            "7-subset missing table",
            "",
            "`clean` = all three present; `missing:X` = X absent; `keep:X` = only X present.",
            "",
            pivot(recs, conds, methods),
            "",
            "Mean over the 7 conditions: "
            + ", ".join(f"{m} {mean_of(recs, m, conds).mean():.4f}" for m in methods),
            "",
        ]
    return "\n".join(md) + "\n"
