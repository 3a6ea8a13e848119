"""Manifest datasets: a `.csv` / `.jsonl` table of file paths (or inline text) per modality.

Columns: one per modality, `label` (integer class) or `target` (a real number: the manifest is then
a regression task, as with `task="regression"`), optional `split` (train/val/test; a seeded 80/20
train/test split when absent, stratified by class). Paths are relative to the manifest's folder.
A column's kind comes from its files' extensions: .png/.jpg/.jpeg/.bmp image, .wav audio,
.npy array, .txt text; any other value is inline text. A text column decodes to a hashed bag of
words, or to token ids when its encoder is a pretrained text model (`--encoders text=minilm`, see
`pmrfusion.modules.composition.with_encoder_inputs`).

Everything is validated before training, reading file headers only: a missing or unreadable
file, an image of another size than the column's first, a non-integer label or an unknown
split name raise one `PMRFusionError` naming the row (1-based data row) and column.
Audio of another sample rate than the column's most common rate is resampled on decode
(`scipy.signal.resample_poly`) unless `resample=False`, which makes it an error instead.
Audio is cropped/zero-padded to `audio_seconds` (default 1 s); stereo is averaged to mono.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pmrfusion.data.raw import TEXT_DIM, RawMultimodalData, fit_length, text_features
from pmrfusion.data.splits import stratified_split
from pmrfusion.errors import PMRFusionError
from pmrfusion.tasks import CLASSIFICATION, REGRESSION, check_task

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp"}
EXTENSION_KIND = {**{e: "image" for e in IMAGE_EXT}, ".wav": "audio", ".npy": "array", ".txt": "text"}
RESERVED = ("label", "target", "split")
SPLITS = ("train", "val", "test")


def _read_table(path: Path) -> list[dict[str, str]]:
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        else:
            rows = []
            with path.open(encoding="utf-8") as f:
                for i, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            obj = json.loads(line)
                        except json.JSONDecodeError as e:
                            raise PMRFusionError(f"{path}: line {i} is not valid JSON: {e}") from None
                        if not isinstance(obj, dict):
                            raise PMRFusionError(f"{path}: line {i} is not a JSON object")
                        rows.append({k: "" if v is None else str(v) for k, v in obj.items()})
    except (OSError, UnicodeDecodeError) as e:
        raise PMRFusionError(f"cannot read manifest {path}: {e}") from None
    if not rows:
        raise PMRFusionError(f"manifest {path} has no rows")
    return rows


def _kind_of(value: str) -> str:
    return EXTENSION_KIND.get(Path(value).suffix.lower(), "text-inline")


def _where(i: int, col: str) -> str:
    return f"row {i + 1}, column '{col}'"


def _wav_header(path: Path) -> tuple[int, int]:
    from scipy.io import wavfile

    rate, data = wavfile.read(path, mmap=True)
    return int(rate), int(data.shape[0])


def _decode_wav(path: Path) -> tuple[int, np.ndarray]:
    from scipy.io import wavfile

    rate, data = wavfile.read(path)
    x = np.asarray(data)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    elif x.dtype == np.int32:
        x = x.astype(np.float32) / 2147483648.0
    elif x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 128.0
    else:
        x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(1)
    return int(rate), x


@dataclass
class ManifestSource:
    """Decodes manifest rows from files on access; optional on-disk cache of decoded arrays."""

    root: Path
    values: dict[str, list[str]]  # modality -> per-row path or inline text
    kinds: dict[str, str]
    image_modes: dict[str, str]
    sample_rates: dict[str, int]
    audio_length: dict[str, int]
    cache_dir: Path | None = None
    _cache_key: dict[str, str] = field(default_factory=dict)

    def text(self, row: int, modality: str) -> str:
        """The raw string of a text cell: inline text, or the content of its .txt file."""
        if self.kinds.get(modality) != "text":
            raise PMRFusionError(f"column '{modality}' is not a text column")
        value = self.values[modality][row]
        if _kind_of(value) == "text-inline":
            return value
        return (self.root / value).read_text(encoding="utf-8")

    def _decode(self, m: str, value: str) -> np.ndarray:
        kind = self.kinds[m]
        if kind == "text" and _kind_of(value) == "text-inline":
            return text_features(value)
        path = self.root / value
        if kind == "image":
            from PIL import Image

            with Image.open(path) as im:
                arr = np.asarray(im.convert(self.image_modes[m]))
            return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()
        if kind == "audio":
            rate, x = _decode_wav(path)
            target = self.sample_rates[m]
            if rate != target:
                from scipy.signal import resample_poly

                g = gcd(rate, target)
                x = resample_poly(x, target // g, rate // g).astype(np.float32)
            return fit_length(x, self.audio_length[m]).astype(np.float32)
        if kind == "array":
            return np.load(path, allow_pickle=False).astype(np.float32)
        return text_features(path.read_text(encoding="utf-8"))

    def _cached(self, m: str, value: str) -> np.ndarray:
        if self.cache_dir is None:
            return self._decode(m, value)
        key = hashlib.sha1(f"{m}|{value}|{self.audio_length.get(m)}|{self.sample_rates.get(m)}".encode())
        file = self.cache_dir / f"{key.hexdigest()}.npy"
        if file.exists():
            return np.load(file)
        arr = self._decode(m, value)
        tmp = file.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, file)
        return arr

    def get(self, row: int, modalities: list[str]) -> dict[str, Tensor]:
        out = {}
        for m in modalities:
            arr = self._cached(m, self.values[m][row])
            out[m] = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        return out


def load_manifest(
    path: str | os.PathLike,
    name: str | None = None,
    split_seed: int = 0,
    audio_seconds: float = 1.0,
    resample: bool = True,
    cache_dir: str | os.PathLike | None = None,
    task: str | None = None,
) -> RawMultimodalData:
    """Validate a manifest and return its lazily decoded `RawMultimodalData`.

    The task is the manifest's: a `target` column makes it regression (float32 targets, L1 loss,
    regression metrics), a `label` column classification; `task="regression"` also reads a `label`
    column as real numbers.
    """
    if task is not None:
        check_task(task)
    path = Path(path)
    if not path.is_file():
        raise PMRFusionError(f"manifest not found: {path}")
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise PMRFusionError(f"manifest must be .csv or .jsonl, got '{path.suffix}'")
    table = _read_table(path)
    root = path.resolve().parent
    columns = list(table[0])
    if "label" in columns and "target" in columns:
        raise PMRFusionError(f"manifest {path}: both 'label' and 'target' columns: keep one")
    if "label" not in columns and "target" not in columns:
        raise PMRFusionError(
            f"manifest {path}: no 'label' column (or 'target' for regression; columns: {columns})"
        )
    label_col = "target" if "target" in columns else "label"
    if label_col == "target" and task == CLASSIFICATION:
        raise PMRFusionError(f"manifest {path}: a 'target' column is a regression target, not classes")
    task = task or (REGRESSION if label_col == "target" else CLASSIFICATION)
    mods = [c for c in columns if c not in RESERVED]
    if len(mods) < 2:
        raise PMRFusionError(f"manifest {path}: need at least 2 modality columns, got {mods}")
    regression = task == REGRESSION
    labels = np.empty(len(table), dtype=np.float32 if regression else np.int64)
    for i, r in enumerate(table):
        raw = (r.get(label_col) or "").strip()
        try:
            labels[i] = float(raw) if regression else int(raw)
        except ValueError:
            where = _where(i, label_col)
            what = "a number" if regression else "an integer (a real-valued target: name the column 'target')"
            raise PMRFusionError(f"manifest {path}: {where}: {label_col} '{raw}' is not {what}") from None
        if regression and not np.isfinite(labels[i]):
            where = _where(i, label_col)
            raise PMRFusionError(f"manifest {path}: {where}: {label_col} '{raw}' is not finite")
    if not regression and labels.min() < 0:
        raise PMRFusionError(f"manifest {path}: labels must be >= 0 (found {labels.min()})")
    values = {m: [(r.get(m) or "").strip() for r in table] for m in mods}
    kinds, shapes, modes, rates, lengths = {}, {}, {}, {}, {}
    notes: list[str] = []
    for m in mods:
        kinds[m], shapes[m], extra = _validate_column(path, root, m, values[m], audio_seconds, resample)
        if kinds[m] == "image":
            modes[m] = extra
        if kinds[m] == "audio":
            rates[m], lengths[m], note = extra
            if note:
                notes.append(note)
    if "split" in columns:
        names = [(r.get("split") or "").strip() for r in table]
        for i, s in enumerate(names):
            if s not in SPLITS:
                raise PMRFusionError(f"manifest {path}: {_where(i, 'split')}: '{s}' is not one of {SPLITS}")
        arr = np.array(names)
        splits = {s: np.flatnonzero(arr == s) for s in SPLITS if (arr == s).any()}
        if "train" not in splits or "test" not in splits:
            raise PMRFusionError(f"manifest {path}: the split column needs both 'train' and 'test' rows")
    else:
        strata = np.zeros(len(labels), np.int64) if regression else labels
        splits = stratified_split(strata, 0.2, split_seed)
        how = "random" if regression else "stratified"
        notes.append(f"no split column: {how} 80/20 split made with seed {split_seed}")
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    source = ManifestSource(root, values, kinds, modes, rates, lengths, cache)
    return RawMultimodalData(
        name or path.stem, kinds, shapes, labels, splits, source, sample_rates=rates, notes=notes, task=task
    )


def _validate_column(path: Path, root: Path, m: str, vals: list[str], audio_seconds: float, resample: bool):
    """(kind, decoded sample shape, extra) of one modality column; raises on the first bad row."""
    first = _kind_of(vals[0]) if vals[0] else "text-inline"
    kind = "text" if first in ("text", "text-inline") else first
    for i, v in enumerate(vals):
        k = _kind_of(v)
        k = "text" if k in ("text", "text-inline") else k
        if not v:
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: empty value")
        if k != kind:
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: a {k} value in a {kind} column")
    seen: dict[str, object] = {}

    def header(i: int, v: str):
        if v in seen:
            return seen[v]
        file = root / v
        if not file.is_file():
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: file not found: {v}")
        try:
            if kind == "image":
                from PIL import Image

                with Image.open(file) as im:
                    info = (im.size, im.mode)
            elif kind == "audio":
                info = _wav_header(file)
            elif kind == "array":
                info = np.load(file, mmap_mode="r", allow_pickle=False).shape
            else:
                file.read_text(encoding="utf-8")
                info = None
        except PMRFusionError:
            raise
        except Exception as e:  # noqa: BLE001 - any decoder failure is an unreadable file
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: cannot read {v}: {e}") from None
        seen[v] = info
        return info

    if kind == "text":
        for i, v in enumerate(vals):
            if _kind_of(v) == "text":
                header(i, v)
        return kind, (TEXT_DIM,), None
    infos = [header(i, v) for i, v in enumerate(vals)]
    if kind == "image":
        size, mode0 = infos[0]
        mode = "L" if mode0 in ("1", "L", "I", "I;16", "F") else "RGB"
        for i, (s, _) in enumerate(infos):
            if s != size:
                raise PMRFusionError(
                    f"manifest {path}: {_where(i, m)}: image {vals[i]} is {s[0]}x{s[1]}, "
                    f"the column's first image is {size[0]}x{size[1]}"
                )
        return kind, (1 if mode == "L" else 3, size[1], size[0]), mode
    if kind == "audio":
        rates = Counter(r for r, _ in infos)
        target = rates.most_common(1)[0][0]
        note = None
        if len(rates) > 1:
            if not resample:
                i = next(j for j, (r, _) in enumerate(infos) if r != target)
                raise PMRFusionError(
                    f"manifest {path}: {_where(i, m)}: {vals[i]} has sample rate {infos[i][0]} Hz, "
                    f"the column's is {target} Hz"
                )
            note = f"column '{m}': wavs at {sorted(rates)} Hz resampled to {target} Hz"
        length = int(round(audio_seconds * target))
        return kind, (length,), (target, length, note)
    shape = infos[0]
    for i, s in enumerate(infos):
        if s != shape:
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: array of shape {s}, expected {shape}")
    return kind, tuple(shape), None


__all__ = ["ManifestSource", "load_manifest"]
