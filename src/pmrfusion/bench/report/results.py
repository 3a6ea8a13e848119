"""The report's input: DIR's records, read and indexed (`Results`), and the one number format."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pmrfusion.bench.records import format_mean_std_worst, parse_condition, read_records
from pmrfusion.eval.protocols import available_protocols

NOISE_PROTOCOLS = {
    "gaussian": "Gaussian noise (variance eps)",
    "salt_pepper": "salt-and-pepper (eps/10)",
    "salt_pepper_qmf": "salt-and-pepper, QMF code (density 0.1, P(modality hit) = 0.5 eps/10)",
}


def robustness_protocols() -> tuple[str, ...]:
    """The protocols of the robustness summary: the noise protocols, then every other registered
    protocol but `clean`, in registry order."""
    rest = (p for p in available_protocols() if p not in NOISE_PROTOCOLS and p != "clean")
    return (*NOISE_PROTOCOLS, *rest)


class Results:
    """Accuracy records indexed by (dataset, method, condition) -> {seed: value}."""

    def __init__(self, records: Iterable[dict], metric: str = "accuracy"):
        self.acc: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
        self.protocol_of: dict[str, str] = {}
        self.present: dict[tuple[str, str], int] = {}
        self.modalities: dict[str, int] = {}
        datasets: dict[str, None] = {}
        methods: dict[str, None] = {}
        for r in records:
            if r["metric"] != metric:
                continue
            ds, m, cond = r["dataset"], r["method"], r["condition"]
            datasets[ds] = None
            methods[m] = None
            self.acc[(ds, m, cond)][int(r["seed"])] = float(r["value"])
            self.protocol_of[cond] = r["protocol"]
            self.present[(ds, cond)] = len(r["present"])
            if r["protocol"] == "clean":
                self.modalities[ds] = len(r["present"])
        self.datasets = list(datasets)
        self.methods = list(methods)

    def conditions(self, dataset: str, protocol: str) -> list[str]:
        seen = dict.fromkeys(
            c for (ds, _, c) in self.acc if ds == dataset and self.protocol_of.get(c) == protocol
        )
        return list(seen)

    def methods_of(self, dataset: str) -> list[str]:
        return [m for m in self.methods if (dataset, m, "clean") in self.acc]

    def values(self, dataset: str, method: str, condition: str) -> np.ndarray:
        d = self.acc.get((dataset, method, condition), {})
        return np.array([d[s] for s in sorted(d)])

    def seeds(self, dataset: str, method: str) -> list[int]:
        return sorted(self.acc.get((dataset, method, "clean"), {}))


def fmt_values(v: np.ndarray, pct: bool = True) -> str:
    return format_mean_std_worst(v, 100.0 if pct else 1.0, digits=2, empty="–")


def noise_level(cond: str) -> float:
    """The numeric level of a condition ('gaussian:5' -> 5.0)."""
    level = parse_condition(cond)[1]
    if level is None:
        raise ValueError(f"condition {cond!r} has no numeric level")
    return level



def load_records(directory: Path) -> list[dict]:
    return read_records(directory)
