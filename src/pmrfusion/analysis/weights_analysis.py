"""Do dynamic fusion weights track modality quality? Pearson r(weight_m, per-sample loss_m).

QMF's Assumption 1 / Table 3: a good weight is *negatively* correlated with its modality's loss.
For each method and seed: train (early stopping on validation), then on the test split under
``clean``, ``gaussian:5`` and ``gaussian:10`` (`pmrfusion.eval.protocols.conditions`) compute, per
modality, Pearson r between the fusion weight of each sample and that modality's per-sample CE loss.

Methods: qmf (paper), qmf (code), pdf, and a softmax-confidence baseline, which is the max softmax
probability of each late-fusion head (the late model itself averages with fixed weights).

    pmrfusion analyze-dynamic weights --dataset cub --seeds 5 --out DIR
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pmrfusion.analysis.outputs import write_analysis
from pmrfusion.bench.records import sample_std
from pmrfusion.bench.runner import fit_method, seeded_splits
from pmrfusion.eval.protocols import conditions
from pmrfusion.train import TrainConfig

METHODS: list[tuple[str, str, dict]] = [
    ("qmf (paper)", "qmf", {"mode": "paper"}),
    ("qmf (code)", "qmf", {"mode": "code"}),
    ("pdf", "pdf", {}),
    ("softmax-conf (late)", "late", {}),
]
CONDITIONS = ("clean", "gaussian:5", "gaussian:10")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; NaN when either side is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


@torch.no_grad()
def weights_and_losses(model, features, present, labels) -> tuple[dict, dict]:
    """Per-modality (N,) fusion weights and per-sample CE of the modality logits, eval mode.

    Models without `weights` in their output get the max softmax probability of each head.
    """
    model.eval()
    out = model(features, present)
    weights, losses = {}, {}
    for m in model.modalities:
        z = out.modality_logits[m]
        losses[m] = F.cross_entropy(z, labels, reduction="none").numpy()
        w = out.weights.get(m) if out.weights else None
        weights[m] = (w if w is not None else torch.softmax(z, -1).amax(-1)).numpy()
    return weights, losses


def _conditions(test, seed: int):
    for protocol in ("clean", "gaussian"):
        for cond in conditions(protocol, test, seed):
            if cond.name in CONDITIONS:
                yield cond


def correlations(
    dataset: str = "cub",
    seeds: int = 5,
    epochs: int | None = None,
    data_root=None,
    methods=METHODS,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Raw per-seed records: method, seed, condition, modality, r, mean weight, mean loss."""
    records = []
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)  # fit_method sets the seed
    for seed, p in seeded_splits(dataset, seeds, data_root):
        for label, name, kw in methods:
            model, _ = fit_method(name, p, seed, kw, cfg)
            for cond in _conditions(p.test, seed):
                w, loss = weights_and_losses(model, cond.features, cond.present, p.test.labels)
                for m in model.modalities:
                    records.append(
                        dict(
                            method=label,
                            seed=seed,
                            condition=cond.name,
                            modality=m,
                            r=pearson(w[m], loss[m]),
                            weight=float(w[m].mean()),
                            loss=float(loss[m].mean()),
                        )
                    )
            if log:
                log(f"{dataset} seed {seed} {label} done")
    return records


def summarise(records: list[dict]) -> list[dict]:
    """Mean and std of r over seeds per (method, condition, modality)."""
    keys = []
    for r in records:
        k = (r["method"], r["condition"], r["modality"])
        if k not in keys:
            keys.append(k)
    rows = []
    for method, cond, mod in keys:
        rs = np.array(
            [r["r"] for r in records if (r["method"], r["condition"], r["modality"]) == (method, cond, mod)]
        )
        ok = rs[np.isfinite(rs)]
        rows.append(
            dict(
                method=method,
                condition=cond,
                modality=mod,
                r_mean=float(ok.mean()) if len(ok) else float("nan"),
                r_std=sample_std(ok) if len(ok) else float("nan"),
                seeds=int(len(ok)),
            )
        )
    return rows


def markdown(rows: list[dict], dataset: str) -> str:
    mods = list(dict.fromkeys(r["modality"] for r in rows))
    lines = [
        f"### Pearson r(fusion weight, per-sample loss) on {dataset} test (mean ± sample std over seeds;"
        " negative = the weight drops when the modality's loss rises)",
        "",
        "| method | condition | " + " | ".join(mods) + " |",
        "|---|---|" + "---|" * len(mods),
    ]
    table: dict = {}
    for r in rows:
        table.setdefault((r["method"], r["condition"]), {})[r["modality"]] = r
    for (method, cond), by_mod in table.items():
        cells = [
            f"{by_mod[m]['r_mean']:+.3f} ± {by_mod[m]['r_std']:.3f}" if m in by_mod else "-" for m in mods
        ]
        lines.append(f"| {method} | {cond} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, dataset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mods = list(dict.fromkeys(r["modality"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    fig, axes = plt.subplots(1, len(mods), figsize=(4.5 * len(mods), 3.6), sharey=True, squeeze=False)
    width = 0.8 / len(methods)
    for ax, mod in zip(axes[0], mods):
        for i, method in enumerate(methods):
            vals = [
                next(
                    (r for r in rows if (r["method"], r["condition"], r["modality"]) == (method, c, mod)),
                    None,
                )
                for c in conds
            ]
            means = [v["r_mean"] if v else np.nan for v in vals]
            stds = [v["r_std"] if v else 0.0 for v in vals]
            ax.bar(np.arange(len(conds)) + i * width, means, width, yerr=stds, label=method, capsize=2)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(conds)) + 0.4 - width / 2)
        ax.set_xticklabels(conds)
        ax.set_title(f"{dataset}: {mod}")
    axes[0][0].set_ylabel("Pearson r(weight, loss)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(
    dataset: str = "cub",
    seeds: int = 5,
    out: str | Path | None = None,
    epochs: int | None = None,
    data_root=None,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train, correlate, and (with `out`) write weights_<dataset>.{md,png,json}; returns the rows."""
    records = correlations(dataset, seeds, epochs, data_root, log=log)
    rows = summarise(records)
    if out is not None:
        write_analysis(
            out,
            "weights",
            dataset,
            markdown(rows, dataset),
            {"rows": rows, "records": records},
            lambda png: plot(rows, png, dataset),
        )
    return rows
