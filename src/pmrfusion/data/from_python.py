"""Datasets from Python objects: a mapping of arrays, a pandas DataFrame, a torch `Dataset` of dicts.

Each gives the same data contract as the file loaders, so `prepare`, `pmrfusion.train` and
`run_grid` take the result as they take a loaded file:

- `from_arrays(mapping, labels)`: modality -> array with N rows. When every array is (N, d) (or
  (N,)) the result is a `MultimodalData` of feature vectors; otherwise (images (N, C, H, W), audio
  (N, L), arrays of any shape) a `RawMultimodalData` served from memory, with kinds inferred
  (uint8 (N, C, H, W) with C in 1/3 -> "image", else "array") or given (`kinds`).
- `from_dataframe(df)`: one column per modality plus `label` / `target` (and optional `split`,
  `id`, `present_<m>`). Columns whose cells are arrays (or lists) of numbers are stacked into
  feature vectors; otherwise the frame is read as a manifest table (file paths relative to `root`,
  inline text, numbers; `data.manifest`), its array columns (if any) as inline numeric columns
  (kind "array", cells flattened; an all-NaN or None cell is absent). Needs the `pandas` extra,
  imported only here.
- `from_torch_dataset(ds)`: every item a dict modality -> tensor / array plus the label key;
  stacked and passed to `from_arrays`.

Everywhere: labels may be strings or any integers (a stored class list, `data.labels`) or None
(unlabelled: loads for prediction only); an all-NaN row, a None / empty cell or False in
`present[m]` marks a modality absent for that sample (`data.presence`); without `splits` a
seeded, stratified 80/20 train/test split is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.labels import is_text_labels
from pmrfusion.data.raw import ArraySource, RawMultimodalData
from pmrfusion.data.splits import split_strata, stratified_split
from pmrfusion.errors import PMRFusionError
from pmrfusion.tasks import REGRESSION

LABEL_COLUMNS = ("label", "target")


def _splits(labels: Any, n: int, splits: Mapping[str, Any] | None, seed: int, notes: list[str]):
    if splits is not None:
        return {k: np.asarray(v) for k, v in splits.items()}
    if labels is None:
        return {"test": np.arange(n)}
    y = np.asarray(labels).reshape(-1)
    strata = y if is_text_labels(y) else split_strata(y)
    notes.append(f"no split given: stratified 80/20 split made with seed {seed}")
    return stratified_split(strata, 0.2, seed)


def _infer_kind(x: np.ndarray) -> str:
    if x.dtype == np.uint8 and x.ndim == 4 and x.shape[1] in (1, 3):
        return "image"
    return "array"


def from_arrays(
    mapping: Mapping[str, Any],
    labels: Any = None,
    *,
    name: str = "arrays",
    splits: Mapping[str, Any] | None = None,
    present: Mapping[str, Any] | None = None,
    task: str = "",
    classes: list[str] | None = None,
    kinds: Mapping[str, str] | None = None,
    split_seed: int = 0,
) -> MultimodalData | RawMultimodalData:
    """A dataset of in-memory arrays (see the module docstring); `labels` None: unlabelled."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise PMRFusionError("from_arrays needs a mapping modality -> array")
    arrays = {str(m): np.asarray(x) for m, x in mapping.items()}
    n = len(next(iter(arrays.values())))
    notes: list[str] = []
    rows = _splits(labels, n, splits, split_seed, notes)
    vectors = kinds is None or all(k == "vector" for k in kinds.values())
    if vectors and all(x.ndim in (1, 2) for x in arrays.values()):
        return MultimodalData(name, arrays, labels, rows, notes=notes, task=task, classes=classes,
                              present=dict(present) if present is not None else None)  # fmt: skip
    kinds = {m: (kinds or {}).get(m) or _infer_kind(x) for m, x in arrays.items()}
    presence: dict[str, np.ndarray] = {m: np.ones(n, bool) for m in arrays}
    stored = {}
    for m, x in arrays.items():
        if len(x) != n:
            raise PMRFusionError(f"dataset '{name}': modality '{m}' has {len(x)} rows, not {n}")
        if x.dtype.kind == "f":
            flat = x.reshape(n, -1)
            gone = np.isnan(flat).all(1)
            if (np.isnan(flat[~gone]).any()) or (~np.isfinite(flat[~gone])).any():
                r = int(np.flatnonzero(~np.isfinite(flat).all(1) & ~gone)[0])
                raise PMRFusionError(f"dataset '{name}': modality '{m}' row {r} has NaN/inf values")
            presence[m] &= ~gone
        if present is not None and m in present:
            presence[m] &= np.asarray(present[m], bool)
        if not presence[m].all():
            x = x.copy()
            x[~presence[m]] = 0
        stored[m] = x.astype(np.float32) if kinds[m] == "array" and x.dtype.kind != "f" else x
    shapes = {m: tuple(x.shape[1:]) for m, x in stored.items()}
    source = ArraySource(stored, {})
    return RawMultimodalData(
        name, kinds, shapes, labels, rows, source, notes=notes, task=task, classes=classes,
        present=presence, num_rows=n,
    )  # fmt: skip


def _is_array_cell(v: Any) -> bool:
    return isinstance(v, (list, tuple, np.ndarray)) or (hasattr(v, "shape") and hasattr(v, "dtype"))


def from_dataframe(
    df: Any,
    *,
    name: str = "dataframe",
    root: str | Path = ".",
    label: str | None = None,
    split_seed: int = 0,
    **manifest_options: Any,
) -> MultimodalData | RawMultimodalData:
    """A dataset from a pandas DataFrame (see the module docstring). `label`: the label column
    (default `label`, or `target` for regression); `root`: where relative file paths start;
    `manifest_options` go to the manifest reader (image_size, column_kinds, audio_seconds, ...)."""
    try:
        import pandas as pd
    except ImportError:
        raise PMRFusionError("from_dataframe needs pandas: pip install 'pmrfusion[pandas]'") from None
    if not isinstance(df, pd.DataFrame):
        raise PMRFusionError(f"from_dataframe needs a pandas DataFrame, got {type(df).__name__}")
    columns = [str(c) for c in df.columns]
    label_col = label or next((c for c in LABEL_COLUMNS if c in columns), None)
    reserved = {label_col, "split", "id"}
    mods = [c for c in columns if c not in reserved and not c.startswith("present_")]
    array_cols = [m for m in mods if any(_is_array_cell(v) for v in df[m].tolist())]
    if array_cols and len(array_cols) == len(mods):
        arrays = {}
        for m in mods:
            cells = df[m].tolist()
            width = next(len(np.ravel(v)) for v in cells if _is_array_cell(v))
            arrays[m] = np.stack([np.ravel(np.asarray(v, np.float32)) if _is_array_cell(v)
                                  else np.full(width, np.nan, np.float32) for v in cells])  # fmt: skip
        present = {c[8:]: df[c].to_numpy().astype(bool) for c in columns if c.startswith("present_")}
        labels = df[label_col].to_numpy() if label_col else None
        splits = None
        if "split" in columns:
            s = df["split"].astype(str).to_numpy()
            splits = {k: np.flatnonzero(s == k) for k in ("train", "val", "test") if (s == k).any()}
        task = REGRESSION if label_col == "target" else ""
        return from_arrays(arrays, labels, name=name, splits=splits, present=present or None, task=task,
                           split_seed=split_seed)  # fmt: skip
    from pmrfusion.data.manifest import manifest_from_table

    kinds = dict(manifest_options.pop("column_kinds", None) or {})
    text_cells = {}
    for j, c in enumerate(columns):  # a mix: array columns become inline numeric cells of the table
        cells = df.iloc[:, j].tolist()
        if c in array_cols:
            text_cells[c] = [_vector_text(name, c, i, v) for i, v in enumerate(cells)]
            kinds.setdefault(c, "array")
        else:
            text_cells[c] = [_cell_text(v) for v in cells]
    manifest_options["column_kinds"] = kinds or None
    table = [dict(zip(columns, row)) for row in zip(*(text_cells[c] for c in columns))]
    if label_col and label_col not in LABEL_COLUMNS:
        table = [{("label" if c == label_col else c): v for c, v in r.items()} for r in table]
        columns = ["label" if c == label_col else c for c in columns]
    return manifest_from_table(Path(f"<DataFrame {name}>"), columns, table, Path(root).resolve(), name,
                               split_seed, **manifest_options)  # fmt: skip


def _vector_text(name: str, m: str, i: int, v: Any) -> str:
    """An array cell as an inline numeric manifest cell (exact for float32); all-NaN or None: absent."""
    if not _is_array_cell(v):
        return _cell_text(v)
    try:
        x = np.ravel(np.asarray(v, np.float32))
    except (TypeError, ValueError):
        raise PMRFusionError(
            f"from_dataframe '{name}': row {i + 1}, column '{m}': not an array of numbers"
        ) from None
    if len(x) and np.isnan(x).all():
        return ""
    if not np.isfinite(x).all():
        raise PMRFusionError(f"from_dataframe '{name}': row {i + 1}, column '{m}': NaN/inf values")
    return " ".join(repr(float(t)) for t in x)


def _cell_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    return str(v)


def from_torch_dataset(
    ds: Iterable[Mapping[str, Any]], *, label_key: str = "label", name: str = "torch", **options: Any
) -> MultimodalData | RawMultimodalData:
    """A dataset from a torch `Dataset` (or any iterable) whose items are dicts modality -> tensor /
    array, plus `label_key` (absent from every item: unlabelled). `options` go to `from_arrays`."""
    items = (
        [ds[i] for i in range(len(ds))] if hasattr(ds, "__getitem__") and hasattr(ds, "__len__") else list(ds)
    )
    if not items or not all(isinstance(it, Mapping) for it in items):
        raise PMRFusionError("from_torch_dataset needs a non-empty dataset whose items are dicts")
    keys = [k for k in items[0] if k != label_key]
    for i, it in enumerate(items):
        if set(it) - {label_key} != set(keys):
            raise PMRFusionError(
                f"from_torch_dataset: item {i} has keys {sorted(it)}, item 0 {sorted(items[0])}"
            )

    def as_array(v: Any) -> np.ndarray:
        return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)

    arrays = {k: np.stack([as_array(it[k]) for it in items]) for k in keys}
    labels = None
    if any(label_key in it for it in items):
        raw = [it[label_key] for it in items]
        labels = np.array([as_array(v).item() if hasattr(v, "shape") else v for v in raw])
    return from_arrays(arrays, labels, name=name, **options)


__all__ = ["from_arrays", "from_dataframe", "from_torch_dataset"]
