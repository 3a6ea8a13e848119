"""The report's accuracy tables: clean, missing modalities, conflict, robustness (ratio to clean)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pmrfusion.bench.report.results import Results, fmt_values, robustness_protocols


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def clean_table(res: Results) -> str:
    rows = [[m, *[fmt_values(res.values(ds, m, "clean")) for ds in res.datasets]] for m in res.methods]
    return md_table(["method", *res.datasets], rows)


def _per_seed_mean(res: Results, ds: str, m: str, conds: list[str]) -> np.ndarray:
    """Per seed, the mean accuracy over `conds`."""
    seeds = res.seeds(ds, m)
    out = []
    for s in seeds:
        vals = [res.acc[(ds, m, c)][s] for c in conds if s in res.acc.get((ds, m, c), {})]
        if vals:
            out.append(np.mean(vals))
    return np.array(out)


def missing_table(res: Results, ds: str, protocol: str = "missing") -> str:
    conds = res.conditions(ds, protocol)
    if not conds:
        return ""
    M = res.modalities.get(ds, 0)
    methods = res.methods_of(ds)
    if len(conds) <= 6:
        header = ["method", "clean", *conds]
        rows = [
            [m, fmt_values(res.values(ds, m, "clean")), *[fmt_values(res.values(ds, m, c)) for c in conds]]
            for m in methods
        ]
        return md_table(header, rows)
    loo = [c for c in conds if res.present[(ds, c)] == M - 1]
    keep = [c for c in conds if res.present[(ds, c)] == 1]
    header = ["method", "clean", f"mean leave-one-out ({len(loo)})", f"mean keep-one ({len(keep)})",
              "worst condition (mean over seeds)"]  # fmt: skip
    rows = []
    for m in methods:
        means = {c: res.values(ds, m, c).mean() for c in conds if res.values(ds, m, c).size}
        worst = min(means, key=means.get) if means else None
        rows.append(
            [
                m,
                fmt_values(res.values(ds, m, "clean")),
                fmt_values(_per_seed_mean(res, ds, m, loo)),
                fmt_values(_per_seed_mean(res, ds, m, keep)),
                f"{worst}: {100 * means[worst]:.2f}" if worst else "–",
            ]
        )
    return md_table(header, rows)


def conflict_table(res: Results, ds: str) -> str:
    conds = res.conditions(ds, "conflict")
    if not conds:
        return ""
    rows = [
        [m, fmt_values(res.values(ds, m, "clean")), *[fmt_values(res.values(ds, m, c)) for c in conds]]
        for m in res.methods_of(ds)
    ]
    return md_table(["method", "clean", *conds], rows)


def robustness(res: Results) -> dict[str, dict[str, dict[str, float]]]:
    """dataset -> method -> protocol -> mean over seeds and conditions of acc / clean acc.

    Conditions equal to the clean test set (gaussian eps = 0) are left out.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for ds in res.datasets:
        out[ds] = {}
        for m in res.methods_of(ds):
            clean = res.acc[(ds, m, "clean")]
            per: dict[str, float] = {}
            for proto in robustness_protocols():
                conds = [c for c in res.conditions(ds, proto) if c != "gaussian:0"]
                ratios = [
                    res.acc[(ds, m, c)][s] / clean[s]
                    for c in conds
                    for s in res.acc.get((ds, m, c), {})
                    if s in clean and clean[s] > 0
                ]
                if ratios:
                    per[proto] = float(np.mean(ratios))
            out[ds][m] = per
    return out


def robustness_table(rob: dict[str, dict[str, dict[str, float]]], methods: list[str]) -> tuple[str, dict]:
    protos = [p for p in robustness_protocols() if any(p in v for d in rob.values() for v in d.values())]
    avg: dict[str, dict[str, float]] = {}
    rows = []
    for m in methods:
        avg[m] = {}
        for p in protos:
            vals = [rob[ds][m][p] for ds in rob if m in rob[ds] and p in rob[ds][m]]
            if vals:
                avg[m][p] = float(np.mean(vals))
        overall = np.mean(list(avg[m].values())) if avg[m] else float("nan")
        rows.append([m, *[f"{avg[m][p]:.3f}" if p in avg[m] else "–" for p in protos], f"{overall:.3f}"])
    return md_table(["method", *protos, "mean"], rows), avg



def per_dataset_section(
    res: Results, table: Callable[[Results, str], str], title: str, intro: str
) -> list[str]:
    """Markdown lines: a section with one table per dataset that has one (none if no dataset does)."""
    tables = [(ds, table(res, ds)) for ds in res.datasets]
    if not any(t for _, t in tables):
        return []
    lines = [f"## {title}", "", intro, ""]
    for ds, t in tables:
        if t:
            lines += [f"### {ds}", "", t]
    return lines

