"""PMR Table 10 layout: one row per method, one column group per modality subset, plus the average.

Records come from the runner (protocols ``clean`` and ``missing``); a condition's subset is named by
the first letters of its present modalities ({audio, text} -> "a,t"), in PMR's column order.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from pmrfusion.eval.metrics import sample_std

SUBSET_ORDER = ("a", "t", "v", "a,v", "a,t", "t,v", "a,t,v")
AVERAGE = "avg"


def subset_label(present: Sequence[str] | str) -> str:
    """{'audio', 'text'} (or "audio+text") -> "a,t": first letters in a, t, v order."""
    if isinstance(present, str):
        present = present.split("+")
    letters = {m[0] for m in present}
    return ",".join(c for c in "atv" if c in letters)


def subset_means(records: Iterable[dict], metrics: Sequence[str]) -> dict[tuple[str, str, str], np.ndarray]:
    """(method, subset, metric) -> per-seed values (seed order); subset AVERAGE = per-seed mean of 7."""
    per: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for r in records:
        if r["metric"] in metrics and r["protocol"] in ("clean", "missing"):
            per[(r["method"], subset_label(r["present"]), r["metric"])][int(r["seed"])] = float(r["value"])
    out = {k: np.array([v[s] for s in sorted(v)]) for k, v in per.items()}
    for method in {k[0] for k in out}:
        for metric in metrics:
            cols = [out.get((method, s, metric)) for s in SUBSET_ORDER]
            if all(c is not None for c in cols) and len({len(c) for c in cols}) == 1:
                out[(method, AVERAGE, metric)] = np.mean(cols, axis=0)
    return out


def subset_table_csv(records: Iterable[dict], metrics: Sequence[str] = ("acc2", "f1", "mae"), **tags) -> str:
    """Long CSV: tags..., method, subset, metric, mean, std (sample, ddof 1, over seeds), seeds."""
    means = subset_means(records, metrics)
    methods = list(dict.fromkeys(k[0] for k in means))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*tags, "method", "subset", "metric", "mean", "std", "seeds"])
    for m in methods:
        for s in (*SUBSET_ORDER, AVERAGE):
            for metric in metrics:
                v = means.get((m, s, metric))
                if v is not None:
                    mean, std = f"{v.mean():.4f}", f"{sample_std(v):.4f}"
                    w.writerow([*tags.values(), m, s, metric, mean, std, len(v)])
    return buf.getvalue()


def subset_table_markdown(records: Iterable[dict], metric: str, scale: float = 1.0) -> str:
    """One row per method, one column per subset and the average: mean ± std over seeds."""
    means = subset_means(records, [metric])
    methods = list(dict.fromkeys(k[0] for k in means))
    cols = (*SUBSET_ORDER, AVERAGE)
    lines = ["| method | " + " | ".join("{" + c + "}" if c != AVERAGE else c for c in cols) + " |"]
    lines.append("|---|" + "---|" * len(cols))
    for m in methods:
        cells = []
        for c in cols:
            v = means.get((m, c, metric))
            digits = 1 if scale != 1.0 else 3
            if v is None:
                cells.append("")
            elif len(v) == 1:  # one seed has no spread
                cells.append(f"{scale * v[0]:.{digits}f} (n = 1)")
            else:
                cells.append(f"{scale * v.mean():.{digits}f} ± {scale * sample_std(v):.{digits}f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "AVERAGE",
    "SUBSET_ORDER",
    "subset_label",
    "subset_means",
    "subset_table_csv",
    "subset_table_markdown",
]
