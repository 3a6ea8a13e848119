"""`pmrfusion analyze-pmr gradcos|sensitivity|ablation|cost`: PMR analyses (markdown + PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app
from pmrfusion.cli.options import DataRoot, Epochs

KINDS = ("gradcos", "sensitivity", "ablation", "cost")


@app.command("analyze-pmr")
def analyze_pmr(
    kind: Annotated[str, typer.Argument(help="gradcos | sensitivity | ablation | cost")],
    dataset: Annotated[str, typer.Option(help="built-in name or .npz/.mat path")] = "cub",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/analysis"),
    seeds: Annotated[int, typer.Option(help="number of seeds (0..seeds-1)")] = 1,
    epochs: Epochs = 30,
    preservation: Annotated[str, typer.Option(help="gradcos: strict | relaxed")] = "strict",
    data_root: DataRoot = None,
) -> None:
    """Gradient cosine (Fig. 4), n x b sensitivity (Fig. 3), ablation (Table 7), cost (Table 2)."""
    import torch
    from rich.console import Console

    from pmrfusion.analysis import pmr_analyses as A
    from pmrfusion.data.loaders import load_feature_dataset
    from pmrfusion.errors import PMRFusionError
    from pmrfusion.objectives.preservation import PRESERVATIONS
    from pmrfusion.paths import atomic_write_text, check_output_dir
    from pmrfusion.train.trainer import TrainConfig, seed_range

    check_output_dir(out, "--out")
    if kind not in KINDS:
        raise PMRFusionError(f"unknown analysis '{kind}': use one of {', '.join(KINDS)}")
    if seeds < 1 or epochs < 1:
        raise PMRFusionError("--seeds and --epochs must be >= 1")
    ss = seed_range(seeds)
    if preservation not in PRESERVATIONS:
        raise PMRFusionError(f"unknown preservation '{preservation}': use 'strict' or 'relaxed'")
    torch.set_num_threads(1)
    data = load_feature_dataset(dataset, "analyze-pmr", data_root)
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{kind}.png"
    tc = TrainConfig(epochs=epochs, patience=max(5, epochs // 4))
    if kind == "gradcos":
        recs, md = A.gradient_cosine(data, epochs, ss, preservation, png=png)
    elif kind == "sensitivity":
        recs, md = A.sensitivity(data, ss, tc, png=png)
    elif kind == "ablation":
        recs, md = A.ablation(data, ss, tc, png=png)
    else:
        recs, md = A.cost(data.dims, data.num_classes, png=png, name=data.name)
    atomic_write_text(out / f"{kind}.json", json.dumps(recs, indent=1, default=str) + "\n")
    atomic_write_text(out / f"{kind}.md", f"# analyze-pmr {kind}\n\n{md}")
    Console().print(md)
    Console().print(f"written {out}/{kind}.md, .json, .png")
