"""`pmrfusion analyze-dynamic weights|coherence`: dynamic-fusion analyses (markdown + PNG + JSON).

- weights: Pearson r between each modality's fusion weight and its per-sample loss (QMF Table 3),
  for qmf (paper), qmf (code), pdf and a softmax-confidence baseline; see `analysis.weights_analysis`.
- coherence: mean pairwise W2 between modality embeddings and the IID ablation (full, w/o L_dc,
  w/o L_ic) with accuracy under gaussian noise (IID Fig. 4 and ablation); see `analysis.coherence_analysis`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from pmrfusion.cli.app import app
from pmrfusion.cli.options import DataRoot

KINDS = ("weights", "coherence")
IID_METHODS = ("iid-l", "iid-q", "iid-p")


@app.command("analyze-dynamic")
def analyze_dynamic(
    kind: Annotated[str, typer.Argument(help="weights | coherence")],
    dataset: Annotated[str, typer.Option(help="built-in name or .npz/.mat path")] = "cub",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/analysis"),
    seeds: Annotated[int, typer.Option(help="number of seeds (0..seeds-1)")] = 5,
    epochs: Annotated[
        int | None, typer.Option(help="max training epochs (default: TrainConfig's, with early stopping)")
    ] = None,
    method: Annotated[str, typer.Option(help="coherence: iid-l | iid-q | iid-p")] = "iid-q",
    data_root: DataRoot = None,
) -> None:
    """Fusion weight vs loss correlation (QMF Table 3) or IID coherence + ablation (IID Fig. 4)."""
    import torch
    from rich.console import Console

    from pmrfusion.data.loaders import load_feature_dataset
    from pmrfusion.errors import PMRFusionError
    from pmrfusion.paths import check_output_dir
    from pmrfusion.train.trainer import seed_range

    check_output_dir(out, "--out")
    if kind not in KINDS:
        raise PMRFusionError(f"unknown analysis '{kind}': use one of {', '.join(KINDS)}")
    if seeds < 1 or (epochs is not None and epochs < 1):
        raise PMRFusionError("--seeds and --epochs must be >= 1")
    seed_range(seeds)
    if kind == "coherence" and method not in IID_METHODS:
        raise PMRFusionError(
            f"unknown method '{method}' for coherence: use one of {', '.join(IID_METHODS)}"
        )
    load_feature_dataset(dataset, "analyze-dynamic", data_root)  # bad/raw/missing data: error now
    torch.set_num_threads(1)
    console = Console()
    start = time.perf_counter()

    def log(line: str) -> None:
        console.print(f"[dim]{time.perf_counter() - start:7.1f}s {line}[/dim]", highlight=False)

    if kind == "weights":
        from pmrfusion.analysis import weights_analysis as W

        rows = W.run(dataset, seeds, out, epochs, data_root, log=log)
        md = W.markdown(rows, dataset)
    else:
        from pmrfusion.analysis import coherence_analysis as C

        rows = C.run(dataset, seeds, out, method, epochs, data_root, log=log)
        md = C.markdown(rows, dataset, method)
    tag = Path(dataset).stem
    print(md, flush=True)  # plain: rich would wrap the table rows
    console.print(
        f"written {out}/{kind}_{tag}.md, .json, .png in {time.perf_counter() - start:.0f}s",
        highlight=False,
    )
