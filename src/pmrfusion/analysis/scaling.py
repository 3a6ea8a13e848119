"""The same small suite on each executor: wall time, cells/min, and whether the records match.

`scaling_study(out)` runs one suite (datasets x methods x seeds, 1-2 epochs) with the local pool
(1 and 2 processes) and with Dask (a LocalCluster of 1 and 2 workers), each into its own
temporary suite folder (deleted afterwards), and writes OUT/README.md (a table) and
OUT/scaling.csv. "identical" compares each run's results.json byte for byte with the first
run's. Wall time includes starting the workers (and the cluster), so a tiny suite shows the
overhead, not the speed-up of a long one.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pmrfusion.bench.executors import cell_executor
from pmrfusion.bench.suite import SuiteSpec, run_suite
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import atomic_write_text
from pmrfusion.train.trainer import TrainConfig

CONFIGS = (("local", 1), ("local", 2), ("dask", 1), ("dask", 2))


@dataclass(frozen=True)
class ScalingRow:
    executor: str
    workers: int
    cells: int
    seconds: float
    identical: bool

    @property
    def cells_per_minute(self) -> float:
        return 60.0 * self.cells / self.seconds if self.seconds > 0 else float("nan")


def scaling_study(
    out: str | Path,
    datasets: Sequence[str] = ("handwritten",),
    methods: Sequence[str] = ("concat", "late"),
    seeds: int = 2,
    epochs: int = 2,
    configs: Sequence[tuple[str, int]] = CONFIGS,
    log: Callable[[str], None] | None = None,
) -> list[ScalingRow]:
    """Run the suite once per (executor, workers) of `configs`; write README.md and scaling.csv."""
    out = Path(out)
    taken = [f.name for f in (out / "README.md", out / "scaling.csv") if f.exists()]
    if taken:
        raise PMRFusionError(f"{out} already holds {', '.join(taken)}: use a new --out")
    spec = SuiteSpec(datasets=list(datasets), methods=list(methods), seeds=list(range(seeds)),
                     protocols=["clean"], train=TrainConfig(epochs=epochs, batch_size=128))  # fmt: skip
    spec.check()
    say = log or (lambda _: None)
    rows: list[ScalingRow] = []
    reference: bytes | None = None
    for name, n in configs:
        with tempfile.TemporaryDirectory(prefix="pmrfusion-scaling-") as tmp:
            folder = Path(tmp) / "suite"
            start = time.perf_counter()
            with cell_executor(name, n) as ex:
                result = run_suite(spec, folder, jobs=n, executor=ex)
            seconds = time.perf_counter() - start
            records = (folder / "results.json").read_bytes()
        reference = records if reference is None else reference
        rows.append(ScalingRow(name, n, result.ran, round(seconds, 2), records == reference))
        say(f"{name} x{n}: {result.ran} cells in {seconds:.1f}s")
    _write(out, spec, rows)
    return rows


def _write(out: Path, spec: SuiteSpec, rows: list[ScalingRow]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["executor", "workers", "cells", "seconds", "cells_per_min", "identical_records"])
    for r in rows:
        w.writerow([r.executor, r.workers, r.cells, f"{r.seconds:.2f}", f"{r.cells_per_minute:.1f}",
                    r.identical])  # fmt: skip
    atomic_write_text(out / "scaling.csv", buf.getvalue())
    lines = [
        "# Scaling: one suite on each executor",
        "",
        f"Suite: datasets {', '.join(spec.datasets)}; methods {', '.join(spec.methods)}; "
        f"{len(spec.seeds)} seeds; protocol clean; {spec.train.epochs} epochs. Machine: "
        f"{platform.machine()}, {torch.get_num_threads()} torch threads in the parent, "
        f"one per cell; {os.cpu_count()} CPU cores (shared with other work while this ran). Wall time "
        "includes starting the worker processes and the cluster, which dominates a suite this small.",
        "",
        "| executor | workers | cells | wall s | cells/min | records identical to the first run |",
        "|---|---|---|---|---|---|",
        *(f"| {r.executor} | {r.workers} | {r.cells} | {r.seconds:.2f} | {r.cells_per_minute:.1f} | "
          f"{'yes' if r.identical else 'NO'} |" for r in rows),  # fmt: skip
        "",
        "Made by `pmrfusion scaling --out DIR` (`pmrfusion.analysis.scaling`).",
        "",
    ]
    atomic_write_text(out / "README.md", "\n".join(lines))


__all__ = ["CONFIGS", "ScalingRow", "scaling_study"]
