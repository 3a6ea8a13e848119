"""`pmrfusion retrieval`: cross-modal retrieval (img<->txt) with contrastive methods vs CCA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("retrieval")
    def retrieval(
        dataset: Annotated[str, typer.Option(help="two-modality dataset")] = "wikipedia",
        methods: Annotated[
            str, typer.Option(help="comma-separated contrastive methods")
        ] = "cmmp,rg-cmmp,sg-cmmp",
        seeds: Annotated[int, typer.Option(help="number of seeds (0..seeds-1)")] = 5,
        out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/retrieval"),
        objective: Annotated[
            str, typer.Option(help="contrastive | joint (CE also trains embeddings)")
        ] = "contrastive",
        epochs: int = 100,
        lr: float = 1e-3,
        batch_size: int = 128,
        cca: Annotated[bool, typer.Option(help="add the scikit-learn CCA baseline")] = True,
        data_root: Annotated[Path | None, typer.Option("--data-root")] = None,
    ) -> None:
        """Train with the contrastive objective, retrieve on test embeddings; CCA side by side."""
        run_command(dataset, methods, seeds, out, objective, epochs, lr, batch_size, cca, data_root)


def run_command(
    dataset: str,
    methods: str,
    seeds: int,
    out: Path,
    objective: str = "contrastive",
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 128,
    cca: bool = True,
    data_root: Path | None = None,
) -> None:
    """Retrieval on a two-modality dataset; writes OUT/results.json and OUT/results.md."""
    from rich.console import Console

    from pmrfusion.bench.store import atomic_write_text
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.errors import PMRFusionError
    from pmrfusion.eval.retrieval import retrieval_table, run_retrieval
    from pmrfusion.methods import method_config
    from pmrfusion.train.trainer import TrainConfig

    console = Console()
    names = [m.strip() for m in methods.split(",") if m.strip()]
    for m in names:
        method_config(m)
    if seeds < 1:
        raise PMRFusionError("--seeds must be >= 1")
    data = load_dataset(dataset, data_root)
    tc = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size)
    records = run_retrieval(
        data,
        names,
        list(range(seeds)),
        tc,
        objective=objective,
        with_cca=cca,
        on_cell=lambda m, s: console.print(f"[dim]{m} seed {s} done[/dim]"),
    )
    a, b = data.modalities[:2]
    main = [f"{a}2{b}:mAP", f"{b}2{a}:mAP", "mean:mAP"]
    rest = [c for c in dict.fromkeys(r["condition"] for r in records) if c not in main]
    md = (
        f"# Retrieval on {data.name}: {', '.join(names)}{' + CCA' if cca else ''}; {seeds} seeds; "
        f"objective {objective}\n\nmean ± std over seeds (worst seed). mAP: category-match relevance "
        "over the whole test gallery; R@k: the paired item in the top k.\n\n"
        + retrieval_table(records, main + rest)
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(records, indent=1) + "\n")
    atomic_write_text(out / "results.md", md)
    console.print(md)
    console.print(f"{len(records)} records written to {out}/results.json (.md)")
