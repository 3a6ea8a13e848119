"""An experiment's committed records: the per-seed store that runs resume from and pages read.

Two compact CSV files in the experiment's folder:

- `cells.csv`: one row per finished cell (grid, dataset, method, seed), with its wall time and
  provenance (`bench.provenance.Provenance`: package version, git commit and dirty flag, source
  hash, config hash, data fingerprint, torch version, device);
- `records.csv`: the cell's records (grid, dataset, method, protocol, condition, present, seed,
  metric, value, and any further keys such as `regime`), values written with full precision.

A record belongs to the cell of its (grid, dataset, method, seed). Both files are rewritten
atomically after each cell, records first: a cut between the two leaves records whose cell row is
missing, and those are dropped when the store is read (the cell is simply run again).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pmrfusion.bench.provenance import PROVENANCE_KEYS, Provenance
from pmrfusion.bench.records import RECORD_KEYS, Record
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import atomic_write_text

RECORDS_FILE = "records.csv"
CELLS_FILE = "cells.csv"
CELL_KEYS = ("grid", "dataset", "method", "seed")
CellKey = tuple[str, str, str, int]


@dataclass(frozen=True)
class StoredCell:
    key: CellKey
    seconds: float
    provenance: Provenance


def cell_key(record: dict) -> CellKey:
    return (str(record["grid"]), str(record["dataset"]), str(record["method"]), int(record["seed"]))


class ExperimentStore:
    """The cells and records of one experiment folder, in memory; `save` writes both files."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.cells: dict[CellKey, StoredCell] = {}
        self.records: dict[CellKey, list[dict]] = {}

    # -- reading

    @classmethod
    def read(cls, folder: str | Path) -> ExperimentStore:
        """The store in `folder` (empty when it holds no cells.csv)."""
        store = cls(folder)
        cells_path = store.folder / CELLS_FILE
        if not cells_path.exists():
            return store
        for row in _rows(cells_path, (*CELL_KEYS, "seconds", *PROVENANCE_KEYS)):
            key = (row["grid"], row["dataset"], row["method"], _int(row["seed"], cells_path))
            store.cells[key] = StoredCell(key, float(row["seconds"]), Provenance.from_row(row))
        records_path = store.folder / RECORDS_FILE
        if records_path.exists():
            for row in _rows(records_path, ("grid", *RECORD_KEYS)):
                record = Record.from_dict(row).to_dict()
                record = {"grid": row["grid"], **record}
                key = cell_key(record)
                if key in store.cells:  # records of an unfinished write are dropped
                    store.records.setdefault(key, []).append(record)
        for key in [k for k in store.cells if k not in store.records]:
            del store.cells[key]  # a cell row without its records: run it again
        return store

    def all_records(self, keys: Iterable[CellKey] | None = None) -> list[dict]:
        """The records of `keys` (default: every cell), in cell order."""
        return [r for k in (self.cells if keys is None else keys) for r in self.records.get(k, [])]

    # -- writing

    def put(self, key: CellKey, records: list[dict], seconds: float, provenance: Provenance) -> None:
        """Replace cell `key` by `records` (each with the cell's grid, dataset, method and seed)."""
        for r in records:
            if cell_key(r) != key:
                raise PMRFusionError(f"record {r} does not belong to cell {key}")
        self.records[key] = list(records)
        self.cells[key] = StoredCell(key, seconds, provenance)

    def drop(self, keys: Iterable[CellKey]) -> None:
        for k in list(keys):
            self.cells.pop(k, None)
            self.records.pop(k, None)

    def save(self) -> None:
        """Write records.csv, then cells.csv (each atomically), in a stable order."""
        self.folder.mkdir(parents=True, exist_ok=True)
        order = sorted(self.cells)
        extra = sorted({k for key in order for r in self.records[key] for k in r} - {"grid", *RECORD_KEYS})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["grid", *RECORD_KEYS, *extra], lineterminator="\n")
        w.writeheader()
        for key in order:
            for r in self.records[key]:
                value = r["value"]
                value = math.nan if value is None else float(value)
                w.writerow({**{k: r.get(k, "") for k in extra}, **r, "present": "+".join(r["present"]),
                            "value": repr(value)})  # fmt: skip
        atomic_write_text(self.folder / RECORDS_FILE, buf.getvalue())
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=[*CELL_KEYS, "seconds", *PROVENANCE_KEYS], lineterminator="\n")
        w.writeheader()
        for key in order:
            cell = self.cells[key]
            w.writerow({**dict(zip(CELL_KEYS, key, strict=True)), "seconds": f"{cell.seconds:.1f}",
                        **cell.provenance.to_row()})  # fmt: skip
        atomic_write_text(self.folder / CELLS_FILE, buf.getvalue())


def _int(text: str, path: Path) -> int:
    try:
        return int(text)
    except ValueError:
        raise PMRFusionError(f"{path}: seed '{text}' is not an integer") from None


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [k for k in required if k not in (reader.fieldnames or [])]
            if missing:
                raise PMRFusionError(f"{path} lacks the column(s) {missing}")
            rows = []
            for row in reader:
                if None in row or None in row.values():
                    raise PMRFusionError(f"{path} line {reader.line_num}: wrong number of columns")
                rows.append(row)
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise PMRFusionError(f"cannot read {path}: {e}") from None
