"""Where a record came from: the code, the config, the data, the software and the device.

Every cell an experiment runs (`bench.experiment_run`) is stored with one `Provenance`:

- `package_version`, `git_commit` (HEAD of the checkout, "" outside git) and `git_dirty` (the
  package's sources differ from HEAD);
- `source_hash`: a SHA-256 of the package's own source files (every `*.py` under the installed
  `pmrfusion` folder, by relative path and content). Two cells with the same source hash ran the
  same code, whatever commit they were stored under (committing records or docs does not change
  it), so it is the code version that tables refuse to pool across;
- `config_hash`: a SHA-256 of the cell's resolved settings (`config_hash`);
- `data_fingerprint`: a SHA-256 of the loaded data (`data_fingerprint`);
- `torch_version` and `device`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.raw import RawMultimodalData

PACKAGE_DIR = Path(__file__).resolve().parents[1]
HASH_CHARS = 16  # hex digits kept of each SHA-256 (64 bits: no accidental collision among cells)


@dataclass(frozen=True)
class Provenance:
    """The provenance fields of one cell (see the module docstring)."""

    package_version: str
    git_commit: str
    git_dirty: bool
    source_hash: str
    config_hash: str
    data_fingerprint: str
    torch_version: str
    device: str

    def to_row(self) -> dict[str, str]:
        row = {k: str(v) for k, v in asdict(self).items()}
        row["git_dirty"] = "1" if self.git_dirty else "0"
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> Provenance:
        values: dict[str, Any] = {f.name: row[f.name] for f in fields(cls)}
        values["git_dirty"] = row["git_dirty"] == "1"
        return cls(**values)


PROVENANCE_KEYS = tuple(f.name for f in fields(Provenance))


def _digest(chunks: Sequence[bytes] | Any) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(len(chunk).to_bytes(8, "little"))
        h.update(chunk)
    return h.hexdigest()[:HASH_CHARS]


@functools.cache
def source_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 (first 16 hex digits) of every `*.py` of the package, by relative path and content."""
    files = sorted(p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts)
    chunks: list[bytes] = []
    for p in files:
        chunks += [p.relative_to(package_dir).as_posix().encode(), p.read_bytes()]
    return _digest(chunks)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def git_state() -> tuple[str, bool]:
    """(HEAD commit, whether the package's sources differ from it); ("", False) outside git."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return "", False
    status = _git("status", "--porcelain", "--", ".")
    return commit, bool(status)


def config_hash(settings: Mapping[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of `settings` as canonical JSON (sorted keys)."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return _digest([text.encode()])


def _array_bytes(a: Any) -> list[bytes]:
    arr = np.ascontiguousarray(np.asarray(a))
    if arr.dtype == object:
        return [repr(arr.shape).encode(), "\x1f".join(map(str, arr.ravel())).encode()]
    return [repr((arr.shape, arr.dtype.str)).encode(), arr.tobytes()]


def _value_bytes(value: Any) -> list[bytes]:
    """Bytes of a source attribute: arrays by content, mappings and sequences recursively."""
    if isinstance(value, np.ndarray | torch.Tensor):
        return _array_bytes(value.numpy() if isinstance(value, torch.Tensor) else value)
    if isinstance(value, Mapping):
        out: list[bytes] = []
        for k in sorted(value, key=str):
            out += [str(k).encode(), *_value_bytes(value[k])]
        return out
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float | Path) for v in value):
        return ["\x1f".join(map(str, value)).encode()]
    if isinstance(value, str | int | float | bool | Path) or value is None:
        return [repr(value).encode()]
    if hasattr(value, "__dict__"):
        return [type(value).__name__.encode(), *_value_bytes(vars(value))]
    return [type(value).__name__.encode()]


def data_fingerprint(data: MultimodalData | RawMultimodalData) -> str:
    """SHA-256 (first 16 hex digits) of the data as loaded: labels, split indices, and the feature
    arrays (feature vectors) or the sample source's arrays and file references (raw inputs)."""
    chunks: list[bytes] = [data.name.encode(), *_array_bytes(data.labels)]
    for split in sorted(data.splits):
        chunks += [split.encode(), *_array_bytes(data.splits[split])]
    if isinstance(data, RawMultimodalData):
        chunks += _value_bytes({"kinds": data.kinds, "shapes": data.shapes, "source": data.source})
    else:
        chunks += _value_bytes(data.features)
    return _digest(chunks)


def package_version() -> str:
    try:
        return version("pmrfusion")
    except PackageNotFoundError:
        return "unknown"


def provenance(settings: Mapping[str, Any], data_print: str, device: str) -> Provenance:
    """The provenance of a cell run now, with `settings` (hashed) on data of `data_print`."""
    commit, dirty = git_state()
    return Provenance(
        package_version=package_version(),
        git_commit=commit,
        git_dirty=dirty,
        source_hash=source_hash(),
        config_hash=config_hash(settings),
        data_fingerprint=data_print,
        torch_version=torch.__version__,
        device=device,
    )
