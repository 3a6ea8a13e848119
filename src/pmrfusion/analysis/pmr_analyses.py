"""PMR analyses: task/preservation gradient cosine over training (paper Fig. 4), n x b
sensitivity (Fig. 3), structural ablation (Table 7) and params / FLOPs / CPU latency (Table 2).

Each function returns (records, markdown) and writes a PNG when given a path.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.bench.records import sample_std
from pmrfusion.bench.runner import RunSpec, run_grid
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.prepared import prepare
from pmrfusion.methods import build_method
from pmrfusion.modules.heads import MLPHead
from pmrfusion.modules.reconfiguration import Reconfiguration
from pmrfusion.objectives.preservation import preservation_loss
from pmrfusion.train.trainer import TrainConfig, seed_everything


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(v: Sequence[float]) -> str:
    a = np.asarray(v, dtype=float)
    if a.size == 1:  # one seed has no spread
        return f"{a[0]:.4f} (n = 1)"
    return f"{a.mean():.4f} ± {sample_std(a):.4f}" if a.size else ""


# ----------------------------------------------------------------------------- gradient cosine


class GradProbe(nn.Module):
    """PMR -> concat head. `decoupled=True`: the same task path, but the preservation loss comes
    from a separate autoencoder branch (V -> l + l* -> V per modality) that shares no
    parameters with the block, so the preservation gradient never reaches the PMR block or
    its output Z (the generic decoupling of the paper's appendix D)."""

    def __init__(self, dims: Sequence[int], num_classes: int, preservation: str, decoupled: bool):
        super().__init__()
        self.pmr = Reconfiguration(dims)
        self.head = MLPHead(sum(self.pmr.out_dims), num_classes)
        self.preservation = preservation
        self.decoupled = decoupled
        if decoupled:
            ls = self.pmr.l_star
            self.ae = nn.ModuleList(nn.Sequential(nn.Linear(d, d + ls), nn.Linear(d + ls, d)) for d in dims)

    def losses(self, views: list[Tensor], labels: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        rec = self.pmr(views)
        z = rec.fused
        task = F.cross_entropy(self.head(torch.cat(z, -1)), labels)
        recon = [ae(v) for ae, v in zip(self.ae, views)] if self.decoupled else rec.reconstructed
        pres = preservation_loss(self.preservation, views, recon)
        return task, pres, z


def _cos(a: list[Tensor | None], b: list[Tensor | None]) -> float:
    fa = torch.cat([(x if x is not None else torch.zeros_like(y)).flatten() for x, y in zip(a, b)])
    fb = torch.cat([(y if y is not None else torch.zeros_like(x)).flatten() for x, y in zip(a, b)])
    if fa.norm() == 0 or fb.norm() == 0:
        return 0.0
    return float(F.cosine_similarity(fa, fb, dim=0))


def gradient_cosine(
    data: MultimodalData,
    epochs: int = 30,
    seeds: Sequence[int] = (0,),
    preservation: str = "strict",
    lam: float = 1.0,
    png: Path | None = None,
) -> tuple[list[dict], str]:
    """Per epoch, on a fixed batch of training rows: cos(dL_task/dX, dL_pres/dX) at the PMR
    input X = V and output X = Z, for PMR and the decoupled baseline. Both are trained with
    AdamW (lr 1e-3) on L_task + lam * L_pres."""
    records = []
    for seed in seeds:
        prepared = prepare(data, 0.15, seed)
        tr = prepared.train
        probe_rows = torch.arange(min(128, len(tr)))
        for variant in ("pmr", "decoupled"):
            seed_everything(seed)
            model = GradProbe(
                list(prepared.dims.values()), prepared.num_classes, preservation, variant == "decoupled"
            )
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
            gen = torch.Generator().manual_seed(seed)
            for epoch in range(epochs + 1):
                if epoch > 0:
                    model.train()
                    perm = torch.randperm(len(tr), generator=gen)
                    for s in range(0, len(perm), 64):
                        b = tr.batch(perm[s : s + 64])
                        task, pres, _ = model.losses([b.features[m] for m in tr.modalities], b.labels)
                        opt.zero_grad()
                        (task + lam * pres).backward()
                        opt.step()
                model.eval()
                b = tr.batch(probe_rows)
                views = [b.features[m].clone().requires_grad_(True) for m in tr.modalities]
                task, pres, z = model.losses(views, b.labels)
                gt_in = torch.autograd.grad(task, views, retain_graph=True, allow_unused=True)
                gp_in = torch.autograd.grad(pres, views, retain_graph=True, allow_unused=True)
                gt_out = torch.autograd.grad(task, z, retain_graph=True, allow_unused=True)
                gp_out = torch.autograd.grad(pres, z, allow_unused=True)
                for where, ga, gb in (("input", gt_in, gp_in), ("output", gt_out, gp_out)):
                    records.append(
                        {
                            "seed": seed,
                            "variant": variant,
                            "epoch": epoch,
                            "where": where,
                            "cos": _cos(ga, gb),
                        }
                    )
    lines = [
        "| variant | where | cos at init | mean cos epochs 1-5 | mean cos last 5 epochs |",
        "|---|---|---|---|---|",
    ]
    for variant in ("pmr", "decoupled"):
        for where in ("input", "output"):
            rs = [r for r in records if r["variant"] == variant and r["where"] == where]
            first = [r["cos"] for r in rs if r["epoch"] == 0]
            early = [r["cos"] for r in rs if 1 <= r["epoch"] <= 5]
            late = [r["cos"] for r in rs if r["epoch"] > epochs - 5]
            lines.append(f"| {variant} | {where} | {_fmt(first)} | {_fmt(early)} | {_fmt(late)} |")
    md = (
        f"Gradient cosine between L_task and L_preserve ({preservation}) on {data.name}, "
        f"{len(seeds)} seed(s), {epochs} epochs. Decoupled: preservation from a separate "
        "autoencoder branch, so its gradient at Z is zero by construction (cos = 0).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    if png is not None:
        plt = _plt()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
        for ax, where in zip(axes, ("input", "output")):
            for variant in ("pmr", "decoupled"):
                per_epoch = [
                    np.mean(
                        [
                            r["cos"]
                            for r in records
                            if r["variant"] == variant and r["where"] == where and r["epoch"] == e
                        ]
                    )
                    for e in range(epochs + 1)
                ]
                ax.plot(range(epochs + 1), per_epoch, label=variant)
            ax.axhline(0, color="gray", lw=0.5)
            ax.set_title(f"PMR {where}")
            ax.set_xlabel("epoch")
        axes[0].set_ylabel("cos(grad task, grad preserve)")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(png, dpi=120)
        plt.close(fig)
    return records, md


# ----------------------------------------------------------------------------- n x b sensitivity

NS = (1, 2, 4, 8)
BS = (0.25, 0.5, 0.75)


def _clean_acc(records: list[dict]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in records:
        if r["metric"] == "accuracy" and r["condition"] == "clean":
            out.setdefault(r["method"], []).append(r["value"])
    return out


def sensitivity(
    data: MultimodalData,
    seeds: Sequence[int] = (0,),
    tc: TrainConfig | None = None,
    ns: Sequence[int] = NS,
    bs: Sequence[float] = BS,
    png: Path | None = None,
) -> tuple[list[dict], str]:
    """Clean test accuracy of sg-concat for every (n, b), next to concat whose per-modality
    branch has the matched hidden width floor(n b l_m) (ffn-concat with width_ratio = n b)."""
    tc = tc or TrainConfig(epochs=30, patience=8)
    records = []
    grid = {
        "sg-concat": np.full((len(ns), len(bs)), np.nan),
        "concat-matched": np.full((len(ns), len(bs)), np.nan),
    }
    for i, n in enumerate(ns):
        for j, b in enumerate(bs):
            for method, ov in (("sg-concat", {"n": n, "b": b}), ("ffn-concat", {"width_ratio": n * b})):
                try:
                    recs = run_grid(data, RunSpec([method], ("clean",), seeds, ov, tc))
                except Exception as e:  # e.g. an empty PMR part for tiny n*b
                    records.append({"method": method, "n": n, "b": b, "error": str(e)})
                    continue
                acc = _clean_acc(recs)[method]
                name = "sg-concat" if method == "sg-concat" else "concat-matched"
                grid[name][i, j] = float(np.mean(acc))
                records += [{**r, "n": n, "b": b, "label": name} for r in recs]
    lines = ["| n | b | n·b | sg-concat | concat (matched width) |", "|---|---|---|---|---|"]
    for i, n in enumerate(ns):
        for j, b in enumerate(bs):
            pmr_v, cat_v = grid["sg-concat"][i, j], grid["concat-matched"][i, j]
            lines.append(f"| {n} | {b} | {n * b:g} | {pmr_v:.4f} | {cat_v:.4f} |")
    spread = {k: float(np.nanmax(v) - np.nanmin(v)) for k, v in grid.items()}
    md = (
        f"n x b sensitivity on {data.name}: clean test accuracy, mean over {len(seeds)} seed(s).\n\n"
        + "\n".join(lines)
        + f"\n\nSpread (max - min): sg-concat {spread['sg-concat']:.4f}, "
        + f"concat {spread['concat-matched']:.4f}\n"
    )
    if png is not None:
        plt = _plt()
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        vmin = np.nanmin([np.nanmin(v) for v in grid.values()])
        vmax = np.nanmax([np.nanmax(v) for v in grid.values()])
        for ax, (name, g) in zip(axes, grid.items()):
            im = ax.imshow(g, vmin=vmin, vmax=vmax, cmap="viridis", origin="lower")
            ax.set_xticks(range(len(bs)), [str(b) for b in bs])
            ax.set_yticks(range(len(ns)), [str(n) for n in ns])
            ax.set_xlabel("b")
            ax.set_ylabel("n")
            ax.set_title(name)
            for (i, j), v in np.ndenumerate(g):
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(im, ax=axes.tolist(), shrink=0.8)
        fig.savefig(png, dpi=120)
        plt.close(fig)
    return records, md


# ----------------------------------------------------------------------------- ablation

ABLATION_METHODS = ("sg-concat", "rg-concat", "ffn-concat", "linear-concat", "identity-concat")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def ablation(
    data: MultimodalData,
    seeds: Sequence[int] = (0,),
    tc: TrainConfig | None = None,
    methods: Sequence[str] = ABLATION_METHODS,
    png: Path | None = None,
) -> tuple[list[dict], str]:
    """Full PMR vs parameter-matched FFN vs linear vs identity, all with the same concat head."""
    tc = tc or TrainConfig(epochs=30, patience=8)
    recs = run_grid(data, RunSpec(list(methods), ("clean", "missing"), seeds, {}, tc))
    lines = ["| method | params | clean | mean missing |", "|---|---|---|---|"]
    means = {}
    for m in methods:
        clean = [
            r["value"]
            for r in recs
            if r["method"] == m and r["metric"] == "accuracy" and r["condition"] == "clean"
        ]
        miss = [
            r["value"]
            for r in recs
            if r["method"] == m and r["metric"] == "accuracy" and r["protocol"] == "missing"
        ]
        p = n_params(build_method(m, data.dims, data.num_classes))
        means[m] = float(np.mean(clean))
        lines.append(f"| {m} | {p:,} | {_fmt(clean)} | {np.mean(miss):.4f} |")
    md = (
        f"Structural ablation on {data.name}: test accuracy over {len(seeds)} seed(s).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    if png is not None:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.bar(list(means), list(means.values()))
        ax.set_ylabel("clean accuracy")
        ax.set_ylim(min(means.values()) - 0.05, min(1.0, max(means.values()) + 0.02))
        plt.setp(ax.get_xticklabels(), rotation=20)
        fig.tight_layout()
        fig.savefig(png, dpi=120)
        plt.close(fig)
    return recs, md


# ----------------------------------------------------------------------------- cost

COST_METHODS = (
    "concat",
    "late",
    "sg-concat",
    "rg-srht",
    "cmmp",
    "rg-cmmp",
    "perceiver",
    "sg-perceiver",
    "mbt",
    "umoe",
    "rg-umoe",
    "ffn-concat",
)


def flops(model: nn.Module, features: dict[str, Tensor]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with FlopCounterMode(display=False) as fc:  # not under no_grad: its module tracker needs grads
        model(features)
    return int(fc.get_total_flops())


def latency_ms(model: nn.Module, features: dict[str, Tensor], repeats: int = 20) -> float:
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 3):
            t0 = time.perf_counter()
            model(features)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def cost(
    dims: dict[str, int],
    num_classes: int,
    methods: Sequence[str] = COST_METHODS,
    batch: int = 64,
    png: Path | None = None,
    name: str = "",
) -> tuple[list[dict], str]:
    """Params, forward FLOPs per sample (FlopCounterMode; matmul FLOPs = 2 MACs) and median CPU
    latency of one eval forward of a batch, 1 thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        feats = {m: torch.randn(batch, d) for m, d in dims.items()}
        records = []
        for m in methods:
            model = build_method(m, dims, num_classes)
            pmr_params = sum(p.numel() for p in model.optimizer_groups().get("pmr", []))
            records.append(
                {
                    "method": m,
                    "params": n_params(model),
                    "pmr_params": pmr_params,
                    "flops_per_sample": flops(model, feats) / batch,
                    "latency_ms": latency_ms(model, feats),
                }
            )
    finally:
        torch.set_num_threads(threads)
    lines = [
        f"| method | params | of which PMR | MFLOPs / sample | CPU latency, batch {batch} (ms) |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['method']} | {r['params']:,} | {r['pmr_params']:,} | {r['flops_per_sample'] / 1e6:.2f} "
            f"| {r['latency_ms']:.2f} |"
        )
    md = (
        f"Cost on {name or 'given'} dims {dims} ({num_classes} classes), 1 CPU thread.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    if png is not None:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for r in records:
            ax.scatter(r["flops_per_sample"] / 1e6, r["latency_ms"])
            ax.annotate(r["method"], (r["flops_per_sample"] / 1e6, r["latency_ms"]), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("MFLOPs / sample")
        ax.set_ylabel(f"latency (ms, batch {batch})")
        fig.tight_layout()
        fig.savefig(png, dpi=120)
        plt.close(fig)
    return records, md


__all__ = ["ablation", "cost", "gradient_cosine", "sensitivity", "flops", "latency_ms", "n_params"]
