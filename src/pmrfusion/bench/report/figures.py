"""The report's PNG figures: accuracy (or MAE) against the noise level, and the robustness bars."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from pmrfusion.bench.records import safe_component, sample_std
from pmrfusion.bench.report.results import NOISE_PROTOCOLS, Results, noise_level, robustness_protocols
from pmrfusion.paths import atomic_write_bytes

MAX_NAME = 80  # characters of a name kept in a figure's file name


def figure_name(kind: str, name: str) -> str:
    """'fig_<kind>_<name>.png' for a name from the records (never a path): a name that is not
    already safe, or is longer than MAX_NAME, is shortened and gets a hash of itself (no clash)."""
    safe = safe_component(name)
    if safe != name or len(safe) > MAX_NAME:
        safe = f"{safe[:MAX_NAME]}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    return f"fig_{kind}_{safe}.png"


def save_figure(fig: object, path: Path) -> None:
    """`fig` as PNG at `path`, written atomically (never a half-written figure)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())


def noise_figure(
    res: Results, dataset: str, path: Path, scale: float = 100.0, ylabel: str = "test accuracy (%)"
) -> list[str]:
    """`res`'s metric (accuracy) vs eps, one line per method, ± std shaded; returns the protocols drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protos = [p for p in NOISE_PROTOCOLS if res.conditions(dataset, p)]
    if not protos:
        return []
    methods = res.methods_of(dataset)
    fig, axes = plt.subplots(1, len(protos), figsize=(5.2 * len(protos) + 1.8, 3.8), squeeze=False)
    for ax, proto in zip(axes[0], protos):
        conds = sorted(res.conditions(dataset, proto), key=noise_level)
        for i, method in enumerate(methods):
            xs, mean, std = [], [], []
            points = [(noise_level(c), c) for c in conds]
            if proto == "salt_pepper" and all(e > 0 for e, _ in points):
                points = [(0.0, "clean"), *points]  # eps = 0 is the clean test set
            for e, c in points:
                v = res.values(dataset, method, c)
                if v.size:
                    xs.append(e)
                    mean.append(scale * v.mean())
                    std.append(scale * sample_std(v))
            if not xs:
                continue
            xs_a, m_a, s_a = np.array(xs), np.array(mean), np.array(std)
            color, style = method_style(i, method)
            ax.plot(xs_a, m_a, marker="o", markersize=3, color=color, linestyle=style, label=method)
            ax.fill_between(xs_a, m_a - s_a, m_a + s_a, color=color, alpha=0.08 if len(methods) > 6 else 0.2)
        ax.set_title(f"{dataset}: {NOISE_PROTOCOLS[proto]}")
        ax.set_xlabel("eps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return protos


def method_style(index: int, method: str) -> tuple[tuple[float, ...], str]:
    """A distinct colour per method (tab20) and a line style per family: PMR variants dashed."""
    import matplotlib

    color = matplotlib.colormaps["tab20"](index % 20)
    style = "--" if method.startswith(("sg-", "rg-")) else "-"
    return color, style


def robustness_figure(table: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(table)
    protos = [p for p in robustness_protocols() if any(p in table[m] for m in methods)]
    fig, ax = plt.subplots(figsize=(1.2 + 1.4 * len(methods), 3.6))
    width = 0.8 / max(len(protos), 1)
    for i, p in enumerate(protos):
        vals = [table[m].get(p, np.nan) for m in methods]
        ax.bar(np.arange(len(methods)) + i * width, vals, width, label=p)
    ax.set_xticks(np.arange(len(methods)) + width * (len(protos) - 1) / 2, methods)
    ax.set_ylabel("accuracy / clean accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, ncol=len(protos))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)

