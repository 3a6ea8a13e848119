"""Writing an analysis' table, raw records and figure: `<name>_<dataset>.{md,json,png}`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pmrfusion.paths import atomic_write_text


def write_analysis(
    out: str | Path,
    name: str,
    dataset: str,
    markdown: str,
    payload: dict,
    plot: Callable[[Path], None],
) -> None:
    """Atomically write OUT/<name>_<tag>.md and .json, then the PNG; tag = the dataset's file stem."""
    out = Path(out)
    tag = Path(str(dataset)).stem  # a .npz/.mat path -> its file stem
    atomic_write_text(out / f"{name}_{tag}.md", markdown)
    atomic_write_text(out / f"{name}_{tag}.json", json.dumps(payload, indent=1))
    plot(out / f"{name}_{tag}.png")
