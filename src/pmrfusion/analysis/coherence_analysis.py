"""Distribution coherence of IID: mean pairwise Wasserstein distance between modality
representations, and the IID ablation (full, w/o L_dc, w/o L_ic).

For each variant and seed we train (with early stopping on validation) and then embed the clean test
split, z_m = h_m(x_m). We report, averaged over modality pairs:
- ``W2 raw``: exact 2-Wasserstein distance between the empirical distributions of z_m1 and z_m2
  (POT ``ot.emd2``, uniform weights, squared Euclidean cost, then the square root).
- ``W2 norm``: the same after dividing both clouds by their joint RMS pairwise distance. This is
  the scale-free quantity that L_dc optimises; the raw W2 also moves when the features just shrink.
We also report test accuracy clean and under gaussian eps 5 and 10 for each variant.

    pmrfusion analyze-dynamic coherence --dataset cub --seeds 5 --out DIR
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pmrfusion.analysis.outputs import write_analysis
from pmrfusion.bench.records import sample_std
from pmrfusion.bench.runner import fit_method, seeded_splits
from pmrfusion.eval.protocols import conditions
from pmrfusion.objectives.wasserstein import rms_distance
from pmrfusion.train import TrainConfig, predict

VARIANTS: list[tuple[str, dict]] = [
    ("full", {}),
    ("w/o L_dc", {"dc": False}),
    ("w/o L_ic", {"ic": False}),
]
EPS = (0.0, 5.0, 10.0)


def wasserstein2(x: torch.Tensor, y: torch.Tensor, normalise: bool = False) -> float:
    """Exact W2 between two empirical distributions (uniform weights)."""
    import ot

    if normalise:
        s = rms_distance(x, y)
        x, y = x / s, y / s
    xa, ya = x.double().numpy(), y.double().numpy()
    cost = ot.dist(xa, ya, metric="sqeuclidean")
    a, b = np.full(len(xa), 1 / len(xa)), np.full(len(ya), 1 / len(ya))
    return float(np.sqrt(max(ot.emd2(a, b, cost), 0.0)))


def mean_pairwise_wasserstein(embs: list[torch.Tensor], normalise: bool = False) -> float:
    vals = [
        wasserstein2(embs[i], embs[j], normalise) for i in range(len(embs)) for j in range(i + 1, len(embs))
    ]
    return float(np.mean(vals))


@torch.no_grad()
def embeddings(model, features) -> list[torch.Tensor]:
    model.eval()
    out = model(features)
    return [out.embeddings[m] for m in model.modalities]


def ablation(
    dataset: str = "cub",
    seeds: int = 5,
    method: str = "iid-q",
    epochs: int | None = None,
    data_root=None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Per-seed records: variant, seed, W2 raw / norm, accuracy at each eps."""
    records = []
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)  # fit_method sets the seed
    for seed, p in seeded_splits(dataset, seeds, data_root):
        for label, kw in VARIANTS:
            model, _ = fit_method(method, p, seed, kw, cfg)
            embs = embeddings(model, p.test.features)
            rec = dict(
                variant=label,
                seed=seed,
                w2_raw=mean_pairwise_wasserstein(embs),
                w2_norm=mean_pairwise_wasserstein(embs, normalise=True),
            )
            for cond in conditions("gaussian", p.test, seed):
                eps = float(cond.name.split(":")[1])
                if eps in EPS:
                    logits = predict(model, cond.features, cond.present)
                    rec[f"acc_eps{eps:g}"] = float((logits.argmax(-1) == p.test.labels).float().mean())
            records.append(rec)
            if log:
                log(f"{dataset} seed {seed} {method} {label}: {rec}")
    return records


def summarise(records: list[dict]) -> list[dict]:
    rows = []
    for label in dict.fromkeys(r["variant"] for r in records):
        rs = [r for r in records if r["variant"] == label]
        row = {"variant": label, "seeds": len(rs)}
        for k in rs[0]:
            if k not in ("variant", "seed"):
                v = np.array([r[k] for r in rs], float)
                row[k] = float(v.mean())
                row[k + "_std"] = sample_std(v)
                if k.startswith("acc"):
                    row[k + "_worst"] = float(v.min())
        rows.append(row)
    return rows


def markdown(rows: list[dict], dataset: str, method: str) -> str:
    lines = [
        f"### {method} on {dataset}: modality coherence and ablation (mean ± sample std over seeds; accuracy"
        " in %, worst seed after /)",
        "",
        "| variant | W2 raw | W2 norm | " + " | ".join(f"acc eps={e:g}" for e in EPS) + " |",
        "|---|---|---|" + "---|" * len(EPS),
    ]
    for r in rows:
        accs = []
        for e in EPS:
            k = f"acc_eps{e:g}"
            accs.append(f"{100 * r[k]:.2f} ± {100 * r[k + '_std']:.2f} / {100 * r[k + '_worst']:.2f}")
        lines.append(
            f"| {r['variant']} | {r['w2_raw']:.3f} ± {r['w2_raw_std']:.3f} | {r['w2_norm']:.3f} ±"
            f" {r['w2_norm_std']:.3f} | " + " | ".join(accs) + " |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, dataset: str, method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    names = [r["variant"] for r in rows]
    axes[0].bar(names, [r["w2_norm"] for r in rows], yerr=[r["w2_norm_std"] for r in rows], capsize=3)
    axes[0].set_title(f"{dataset} {method}: mean pairwise W2 (normalised)")
    axes[0].set_ylabel("mean pairwise W2 (normalised)")
    for i, e in enumerate(EPS):
        axes[1].bar(
            np.arange(len(rows)) + i * 0.25,
            [100 * r[f"acc_eps{e:g}"] for r in rows],
            0.25,
            label=f"eps={e:g}",
        )
    axes[1].set_xticks(np.arange(len(rows)) + 0.25)
    axes[1].set_xticklabels(names)
    axes[1].set_title("test accuracy under gaussian noise")
    axes[1].set_ylabel("test accuracy (%)")
    axes[1].legend(fontsize=7, ncol=3, loc="lower center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(
    dataset: str = "cub",
    seeds: int = 5,
    out: str | Path | None = None,
    method: str = "iid-q",
    epochs: int | None = None,
    data_root=None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train the ablation, measure coherence; with `out` write coherence_<dataset>.{md,png,json}."""
    records = ablation(dataset, seeds, method, epochs, data_root, log)
    rows = summarise(records)
    if out is not None:
        write_analysis(
            out,
            "coherence",
            dataset,
            markdown(rows, dataset, method),
            {"rows": rows, "records": records},
            lambda png: plot(rows, png, dataset, method),
        )
    return rows
