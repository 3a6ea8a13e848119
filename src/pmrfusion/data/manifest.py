"""Manifest datasets: a `.csv` / `.jsonl` table of file paths (or inline text) per modality.

Columns: one per modality, `label` (integer class) or `target` (a real number: the manifest is then
a regression task, as with `task="regression"`), optional `split` (train/val/test; a seeded 80/20
train/test split when absent, stratified by class), optional `id` (the sample id: not a modality;
each row's must be non-empty and unique). Every other column is a modality. Names are exact
(lower case). Paths are relative to the manifest's folder. A cell is a file when its extension is
.png/.jpg/.jpeg/.bmp (image), .wav (audio), .npy (array) or .txt (text) and it has no whitespace
or names an existing file; any other value is inline text (so "a photo of a cat.png" is text). A
column's kind is its first cell's; a cell of another kind is an error. A text column decodes to a
hashed bag of words, or to token ids when its encoder is a pretrained text model
(`--encoders text=minilm`, see `pmrfusion.modules.composition.with_encoder_inputs`).

Table format: UTF-8 (a byte-order mark, as Excel writes, is skipped). CSV: a header row, then
rows of exactly as many fields (blank lines skipped), no duplicate column names, cells of at
most `MAX_TEXT_BYTES` characters. JSONL: one JSON object per line, every line with the same keys
(no duplicates), values strings, numbers or null (a list, object or boolean is refused: arrays
belong in .npy files). Labels are plain decimal integers (`1_0`, `²` or `1.0` are refused) up to
int64; targets plain decimal numbers.

Containment: a file must resolve (after `..`, absolute paths and symlinks) inside the manifest's
folder, unless `allow_outside=True` (or the environment variable `PMRFUSION_MANIFEST_ALLOW_OUTSIDE=1`
when `allow_outside` is None).

Naturally missing modalities: an empty cell, or a false value (false/0/no/"", any case; in a
`.jsonl` also a JSON boolean or 0/1 number) in an optional column `present_<m>`, marks modality m
absent for that row (`data.presence`; the source decodes zeros of the column's shape for it, the
batches mark it absent, statistics skip it). A column's
kind is its first non-empty cell's; a row with no modality present is an error naming it.

Labels as users have them: a `label` column whose first cell is a number holds integer classes
(then every cell must be a plain integer; real values belong in `target`); otherwise it holds
words (any non-empty strings), encoded with a stored class list in sorted order (`data.labels`).
Without a `label` / `target` column the manifest is unlabelled: it loads (every row in a "test"
split) for prediction only.

Numeric inline columns: a column whose every non-empty cell is a list of numbers (separated by
whitespace, ',' or ';', optionally in [brackets]; a JSONL number or list of numbers) is an array
column (one float32 vector per row, all of one length), not text. `column_kinds={"m": "text"}`
(or "array") sets a column's kind explicitly.

Everything is validated before training, each file by its content (`pmrfusion.data.content`:
size limits from the header, then a full decode, dtype, finiteness and value range; in a thread
pool, results cached by path, size and mtime): a missing, unreadable, truncated, non-finite or
too large file, an image of another size than the column's first, a non-integer label or an
unknown split name raise one `PMRFusionError` naming the row (1-based data row) and column.
16-bit grey images are scaled to 8 bits (round(v / 257)). Audio of another sample rate than the
column's most common rate is resampled on decode (`scipy.signal.resample_poly`) unless
`resample=False`, which makes it an error instead. Audio is cropped/zero-padded to
`audio_seconds` (default 1 s); stereo is averaged to mono.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrfusion.data.content import (
    MAX_AUDIO_LENGTH,
    MAX_TEXT_BYTES,
    MIN_AUDIO_LENGTH,
    ContentChecker,
    UnreadableFile,
    cache_file_for,
    check_files,
    decode_image,
    grey_mode,
    load_array,
    read_wav,
)
from pmrfusion.data.raw import TEXT_DIM, RawMultimodalData, fit_length, text_features
from pmrfusion.data.splits import stratified_split
from pmrfusion.errors import PMRFusionError, first_line
from pmrfusion.tasks import CLASSIFICATION, REGRESSION, check_task

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp"}
AUDIO_EXT = {".wav", ".flac", ".ogg"}
EXTENSION_KIND = {**{e: "image" for e in IMAGE_EXT}, **{e: "audio" for e in AUDIO_EXT}, ".npy": "array",
                  ".txt": "text"}  # fmt: skip
ID_COLUMN = "id"
RESERVED = ("label", "target", "split", ID_COLUMN)
PRESENT_PREFIX = "present_"
FALSE_CELLS = ("false", "0", "no", "")
TRUE_CELLS = ("true", "1", "yes")
COLUMN_KINDS = ("text", "array")
SPLITS = ("train", "val", "test")
ALLOW_OUTSIDE_ENV = "PMRFUSION_MANIFEST_ALLOW_OUTSIDE"
INTEGER = re.compile(r"[+-]?[0-9]+")
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.I)
NUMBER_LIST = re.compile(
    r"\[?\s*(?:" + NUMBER.pattern + r")(?:\s*[,;\s]\s*(?:" + NUMBER.pattern + r"))*\s*\]?", re.I
)


JSON_NAMES = {list: "a JSON array", dict: "a JSON object", bool: "a JSON boolean"}


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise ValueError(f"key '{dup}' appears twice")
    return dict(pairs)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    rows: list[dict[str, str]] = []
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, MAX_TEXT_BYTES))
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            try:
                header = next(reader, None)
                if header is None:
                    raise PMRFusionError(f"manifest {path} is empty")
                dup = next((c for c in header if header.count(c) > 1), None)
                if dup is not None:
                    raise PMRFusionError(f"manifest {path}: column '{dup}' appears twice in the header")
                for fields in reader:
                    if not fields:
                        continue  # a blank line
                    if len(fields) != len(header):
                        raise PMRFusionError(
                            f"manifest {path}: row {len(rows) + 1} (line {reader.line_num}) has "
                            f"{len(fields)} fields, the header has {len(header)} ({', '.join(header)})"
                        )
                    rows.append(dict(zip(header, fields)))
            except csv.Error as e:
                msg = str(e)
                if "field limit" in msg:
                    msg = f"a cell is longer than {MAX_TEXT_BYTES:,} characters (MAX_TEXT_BYTES)"
                raise PMRFusionError(f"manifest {path}: line {reader.line_num}: {msg}") from None
    finally:
        csv.field_size_limit(old)
    return header, rows


def _jsonl_cell(path: Path, row: int, key: str, v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool) and key.startswith(PRESENT_PREFIX):
        return "true" if v else "false"  # a JSON boolean presence flag
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    what = JSON_NAMES.get(type(v), type(v).__name__)
    raise PMRFusionError(
        f"manifest {path}: row {row}, column '{key}': {what}, not a path, text or number "
        "(store arrays in .npy files)"
    )


def _read_jsonl(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    rows: list[dict[str, str]] = []
    header: list[str] = []
    with path.open(encoding="utf-8-sig") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
            except ValueError as e:
                raise PMRFusionError(f"{path}: line {i} is not valid JSON: {e}") from None
            if not isinstance(obj, dict):
                raise PMRFusionError(f"{path}: line {i} is not a JSON object")
            n = len(rows) + 1
            if not rows:
                header = list(obj)
            elif set(obj) != set(header):
                extra, missing = sorted(set(obj) - set(header)), sorted(set(header) - set(obj))
                raise PMRFusionError(
                    f"manifest {path}: row {n} (line {i}) has other keys than row 1 (extra: {extra}, "
                    f"missing: {missing}): give every row the same keys"
                )
            rows.append({k: _jsonl_cell(path, n, k, v) for k, v in obj.items()})
    return header, rows


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a .csv or .jsonl manifest; rows map every column to a string."""
    try:
        header, rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    except (OSError, UnicodeDecodeError) as e:
        raise PMRFusionError(f"cannot read manifest {path}: {e}") from None
    if not rows:
        raise PMRFusionError(f"manifest {path} has no rows")
    return header, rows


def _kind_of(value: str, root: Path | None = None) -> str:
    """A cell's kind: its extension's, if it has no whitespace or names an existing file under `root`."""
    kind = EXTENSION_KIND.get(Path(value).suffix.lower())
    if kind is None:
        return "text-inline"
    if any(c.isspace() for c in value) and (root is None or not _is_file(root / value)):
        return "text-inline"
    return kind


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _where(i: int, col: str) -> str:
    return f"row {i + 1}, column '{col}'"


def _decode_wav(path: Path) -> tuple[int, np.ndarray]:
    return read_wav(path)


def _allow_outside(value: bool | None) -> bool:
    if value is not None:
        return bool(value)
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class ManifestSource:
    """Decodes manifest rows from files on access; optional on-disk cache of decoded arrays.

    `files[m][i]` is the resolved file of a file cell (None for inline text); without it a cell is
    read as `root / value`. `ids` holds the `id` column, if any.
    """

    root: Path
    values: dict[str, list[str]]  # modality -> per-row path or inline text
    kinds: dict[str, str]
    image_modes: dict[str, str]
    sample_rates: dict[str, int]
    audio_length: dict[str, int]
    cache_dir: Path | None = None
    _cache_key: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[Path | None]] = field(default_factory=dict)
    ids: list[str] | None = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # (width, height) to resize to
    inline_arrays: set[str] = field(default_factory=set)  # array columns of numbers written in the cell

    def _file(self, m: str, row: int) -> Path | None:
        if m in self.files:
            return self.files[m][row]
        value = self.values[m][row]
        return None if _kind_of(value) == "text-inline" else self.root / value

    def text(self, row: int, modality: str) -> str:
        """The raw string of a text cell: inline text, or the content of its .txt file."""
        if self.kinds.get(modality) != "text":
            raise PMRFusionError(f"column '{modality}' is not a text column")
        file = self._file(modality, row)
        return self.values[modality][row] if file is None else file.read_text(encoding="utf-8")

    def _decode(self, m: str, row: int) -> np.ndarray:
        kind = self.kinds[m]
        path = self._file(m, row)
        if not self.values[m][row]:  # an absent cell: zeros of the column's shape
            return np.zeros(self.shapes[m], np.uint8 if kind == "image" else np.float32)
        if m in self.inline_arrays:
            return parse_numbers(self.values[m][row])
        if path is None:
            return text_features(self.values[m][row])
        if kind == "image":
            return decode_image(path, self.image_modes[m], self.image_sizes.get(m))
        if kind == "audio":
            rate, x = read_wav(path)
            target = self.sample_rates[m]
            if rate != target:
                from scipy.signal import resample_poly

                g = gcd(rate, target)
                x = resample_poly(x, target // g, rate // g).astype(np.float32)
            return fit_length(x, self.audio_length[m]).astype(np.float32)
        if kind == "array":
            return load_array(path)
        return text_features(path.read_text(encoding="utf-8"))

    def _cached(self, m: str, row: int) -> np.ndarray:
        if self.cache_dir is None:
            return self._decode(m, row)
        value = self.values[m][row]
        size = f"|{self.image_sizes[m]}" if m in self.image_sizes else ""
        key = hashlib.sha1(
            f"{m}|{value}|{self.audio_length.get(m)}|{self.sample_rates.get(m)}{size}".encode()
        )
        file = self.cache_dir / f"{key.hexdigest()}.npy"
        if file.exists():
            return np.load(file)
        arr = self._decode(m, row)
        tmp = file.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, file)
        return arr

    def get(self, row: int, modalities: list[str]) -> dict[str, Tensor]:
        out = {}
        for m in modalities:
            arr = self._cached(m, row)
            out[m] = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        return out


def parse_numbers(cell: str) -> np.ndarray:
    """An inline numeric cell ("1 2 3", "1,2,3", "[1; 2]") as a float32 vector."""
    return np.array(
        [float(t) for t in re.split(r"[\s,;]+", cell.strip().strip("[]").strip()) if t], np.float32
    )


def _word_labels(path: Path, table: list[dict[str, str]], label_col: str) -> np.ndarray:
    labels = [(r.get(label_col) or "").strip() for r in table]
    for i, v in enumerate(labels):
        if not v:
            raise PMRFusionError(f"manifest {path}: {_where(i, label_col)}: empty label")
    return np.array(labels, dtype=object)


def _parse_labels(path: Path, table: list[dict[str, str]], label_col: str, regression: bool) -> np.ndarray:
    first = (table[0].get(label_col) or "").strip()
    if not regression and not NUMBER.fullmatch(first) and first:
        return _word_labels(path, table, label_col)  # the first cell is a word: a column of words
    labels = np.empty(len(table), dtype=np.float32 if regression else np.int64)
    for i, r in enumerate(table):
        raw = (r.get(label_col) or "").strip()
        where = _where(i, label_col)
        if not (NUMBER if regression else INTEGER).fullmatch(raw):
            what = "a number" if regression else "an integer (a real-valued target: name the column 'target')"
            raise PMRFusionError(f"manifest {path}: {where}: {label_col} '{raw[:40]}' is not {what}")
        try:
            labels[i] = float(raw) if regression else int(raw)
        except (OverflowError, ValueError):  # beyond int64, or past Python's int digit limit
            raise PMRFusionError(
                f"manifest {path}: {where}: {label_col} '{raw[:40]}' is out of range (beyond int64)"
            ) from None
        if regression and not np.isfinite(labels[i]):
            raise PMRFusionError(f"manifest {path}: {where}: {label_col} '{raw[:40]}' is not finite")
    return labels


def _check_ids(path: Path, table: list[dict[str, str]]) -> list[str]:
    ids = [(r.get(ID_COLUMN) or "").strip() for r in table]
    first: dict[str, int] = {}
    for i, v in enumerate(ids):
        if not v:
            raise PMRFusionError(f"manifest {path}: {_where(i, ID_COLUMN)}: empty sample id")
        if v in first:
            raise PMRFusionError(
                f"manifest {path}: {_where(i, ID_COLUMN)}: sample id '{v[:40]}' repeats row {first[v] + 1}'s "
                "(ids must be unique)"
            )
        first[v] = i
    return ids


def _split_rows(path: Path, table: list[dict[str, str]]) -> dict[str, np.ndarray]:
    names = [(r.get("split") or "").strip() for r in table]
    for i, s in enumerate(names):
        if s not in SPLITS:
            raise PMRFusionError(f"manifest {path}: {_where(i, 'split')}: '{s[:40]}' is not one of {SPLITS}")
    arr = np.array(names)
    splits = {s: np.flatnonzero(arr == s) for s in SPLITS if (arr == s).any()}
    if "train" not in splits or "test" not in splits:
        raise PMRFusionError(f"manifest {path}: the split column needs both 'train' and 'test' rows")
    return splits


def load_manifest(
    path: str | os.PathLike,
    name: str | None = None,
    split_seed: int = 0,
    audio_seconds: float = 1.0,
    resample: bool = True,
    cache_dir: str | os.PathLike | None = None,
    task: str | None = None,
    allow_outside: bool | None = None,
    check_cache: str | os.PathLike | bool = True,
    image_size: int | tuple[int, int] | None = None,
    column_kinds: dict[str, str] | None = None,
) -> RawMultimodalData:
    """Validate a manifest (every file by its content) and return its lazily decoded `RawMultimodalData`.

    The task is the manifest's: a `target` column makes it regression (float32 targets, L1 loss,
    regression metrics), a `label` column classification; `task="regression"` also reads a `label`
    column as real numbers. `allow_outside`: accept files outside the manifest's folder (None: the
    `PMRFUSION_MANIFEST_ALLOW_OUTSIDE` environment variable). `check_cache`: where content checks
    are remembered (True: `<cache>/manifest-checks`, False: this process only, or a folder).
    `image_size`: (width, height) (or one side) every image column is resized to (Pillow, bilinear);
    None keeps the images' size, which must then be the same in a column (else an error that says
    to set it). A grey first image makes a grey (1-channel) column, anything else RGB (3 channels):
    RGB/RGBA/palette images of a grey column are converted to grey, grey images of an RGB column
    to RGB, and an alpha channel is dropped. `column_kinds`: modality -> "text" or "array" (inline
    cells read as text, or as numbers), overriding the inference rule.
    """
    if task is not None:
        check_task(task)
    if (
        isinstance(audio_seconds, bool)
        or not isinstance(audio_seconds, (int, float))
        or not (math.isfinite(audio_seconds) and audio_seconds > 0)
    ):
        raise PMRFusionError(f"audio_seconds must be a positive number, got {audio_seconds!r}")
    path = Path(path)
    if not path.is_file():
        raise PMRFusionError(f"manifest not found: {path}")
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise PMRFusionError(f"manifest must be .csv or .jsonl, got '{path.suffix}'")
    columns, table = _read_table(path)
    return manifest_from_table(
        path, columns, table, path.resolve().parent, name or path.stem, split_seed, audio_seconds, resample,
        cache_dir, task, allow_outside, check_cache, image_size, column_kinds,
    )  # fmt: skip


def _image_size(value: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    size = (value, value) if isinstance(value, int) else tuple(value)
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 4 for v in size):
        raise PMRFusionError(f"image_size must be (width, height) of integers >= 4, got {value!r}")
    return (int(size[0]), int(size[1]))


def manifest_from_table(
    path: Path, columns: list[str], table: list[dict[str, str]], root: Path, name: str, split_seed: int = 0,
    audio_seconds: float = 1.0, resample: bool = True, cache_dir: str | os.PathLike | None = None,
    task: str | None = None, allow_outside: bool | None = None, check_cache: str | os.PathLike | bool = True,
    image_size: int | tuple[int, int] | None = None, column_kinds: dict[str, str] | None = None,
) -> RawMultimodalData:  # fmt: skip
    """A manifest's rows (every cell a string) as a `RawMultimodalData`; `path` names it in errors,
    `root` is the folder its relative paths start from. See `load_manifest`."""
    resize = _image_size(image_size)
    column_kinds = dict(column_kinds or {})
    bad_kinds = {m: k for m, k in column_kinds.items() if k not in COLUMN_KINDS}
    if bad_kinds:
        raise PMRFusionError(f"column_kinds must be one of {COLUMN_KINDS}, got {bad_kinds}")
    if "label" in columns and "target" in columns:
        raise PMRFusionError(f"manifest {path}: both 'label' and 'target' columns: keep one")
    unlabelled = "label" not in columns and "target" not in columns
    label_col = "target" if "target" in columns else "label"
    if label_col == "target" and task == CLASSIFICATION:
        raise PMRFusionError(f"manifest {path}: a 'target' column is a regression target, not classes")
    task = task or ("" if unlabelled else REGRESSION if label_col == "target" else CLASSIFICATION)
    mods = [c for c in columns if c not in RESERVED and not c.startswith(PRESENT_PREFIX)]
    if len(mods) < 2:
        raise PMRFusionError(f"manifest {path}: need at least 2 modality columns, got {mods}")
    stray = sorted(set(column_kinds) - set(mods))
    if stray:
        raise PMRFusionError(f"manifest {path}: column_kinds names columns that are not modalities: {stray}")
    flags = [c for c in columns if c.startswith(PRESENT_PREFIX)]
    unknown = sorted(c for c in flags if c[len(PRESENT_PREFIX) :] not in mods)
    if unknown:
        raise PMRFusionError(f"manifest {path}: presence columns {unknown} name no modality column")
    regression = task == REGRESSION
    labels = None if unlabelled else _parse_labels(path, table, label_col, regression)
    notes: list[str] = []
    if unlabelled:
        notes.append("no 'label' / 'target' column: unlabelled (every row in the 'test' split)")
    ids = _check_ids(path, table) if ID_COLUMN in columns else None
    if ids is not None:
        notes.append(f"column '{ID_COLUMN}': sample ids, not a modality")
    if unlabelled:
        splits = {"test": np.arange(len(table))}
    elif "split" in columns:
        splits = _split_rows(path, table)
    else:
        strata = np.zeros(len(labels), np.int64) if regression else labels
        splits = stratified_split(strata, 0.2, split_seed)
        how = "random" if regression else "stratified"
        notes.append(f"no split column: {how} 80/20 split made with seed {split_seed}")
    values = {m: [(r.get(m) or "").strip() for r in table] for m in mods}
    for c in flags:
        m = c[len(PRESENT_PREFIX) :]
        for i, r in enumerate(table):
            flag = (r.get(c) or "").strip().lower()
            if flag not in FALSE_CELLS + TRUE_CELLS:
                raise PMRFusionError(f"manifest {path}: {_where(i, c)}: '{flag[:20]}' is not true/false/1/0")
            if flag in FALSE_CELLS:
                values[m][i] = ""  # marked absent: the cell is not read
    present = {m: np.array([bool(v) for v in values[m]]) for m in mods}
    outside = _allow_outside(allow_outside)
    kinds, files, inline = {}, {}, set()
    for m in mods:
        kinds[m], files[m] = _column_cells(path, root, m, values[m], outside, column_kinds.get(m))
        if kinds[m] == "array" and all(f is None for f in files[m]):
            inline.add(m)
    checker = ContentChecker(cache_file_for(root, check_cache))
    infos = _check_contents(path, checker, mods, kinds, files, values)
    shapes, modes, rates, lengths = {}, {}, {}, {}
    for m in mods:
        on = [i for i, v in enumerate(values[m]) if v]
        if m in inline:
            shapes[m], extra = _inline_shape(path, m, values[m], on), None
        else:
            cells, heads = [values[m][i] for i in on], [infos[m][i] for i in on]
            shapes[m], extra = _column_shape(
                path, m, kinds[m], cells, heads, audio_seconds, resample, on, resize
            )
        if kinds[m] == "image":
            modes[m] = extra
        if kinds[m] == "audio":
            rates[m], lengths[m], note = extra
            if note:
                notes.append(note)
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    source = ManifestSource(root, values, kinds, modes, rates, lengths, cache, files=files, ids=ids,
                            shapes=shapes,
                            image_sizes={m: resize for m in mods if kinds[m] == "image" and resize},
                            inline_arrays=inline)  # fmt: skip
    return RawMultimodalData(
        name, kinds, shapes, labels, splits, source, sample_rates=rates, notes=notes, task=task,
        present=present, num_rows=len(table),
    )  # fmt: skip


def _inline_shape(path: Path, m: str, vals: list[str], on: list[int]) -> tuple[int, ...]:
    """The length of an inline numeric column's vectors (every present cell finite, one length)."""
    length = None
    for i in on:
        x = parse_numbers(vals[i])
        if not np.isfinite(x).all():
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: numbers must be finite (NaN/inf)")
        if length is None:
            length = len(x)
        elif len(x) != length:
            raise PMRFusionError(
                f"manifest {path}: {_where(i, m)}: {len(x)} numbers, the column's first has {length}"
            )
    return (int(length),)


def _column_cells(
    path: Path, root: Path, m: str, vals: list[str], allow_outside: bool, forced: str | None = None
) -> tuple[str, list[Path | None]]:
    """(kind, resolved file per row or None for inline text, inline numbers or an absent cell) of one
    column; raises on the first bad cell. Empty cells are absent; the kind is the first non-empty
    cell's (a column of inline number lists is "array", unless `forced`)."""
    on = [i for i, v in enumerate(vals) if v]
    if not on:
        raise PMRFusionError(f"manifest {path}: column '{m}' has no value in any row")
    inline = [_kind_of(vals[i], root) == "text-inline" for i in on]
    numeric = all(inline) and all(NUMBER_LIST.fullmatch(vals[i]) for i in on)
    if forced == "array" and not numeric:
        i = next(i for i in on if not NUMBER_LIST.fullmatch(vals[i]))
        raise PMRFusionError(f"manifest {path}: {_where(i, m)}: not a list of numbers (column kind 'array')")
    if (forced or ("array" if numeric else None)) == "array":
        return "array", [None] * len(vals)
    if forced == "text" and all(inline):
        return "text", [None] * len(vals)
    cell_kinds = []
    for i, v in enumerate(vals):
        if not v:
            cell_kinds.append("absent")
            continue
        k = _kind_of(v, root)
        cell_kinds.append(k)
        if len(v) > MAX_TEXT_BYTES and k == "text-inline":
            raise PMRFusionError(
                f"manifest {path}: {_where(i, m)}: inline text of {len(v):,} characters, more than "
                f"{MAX_TEXT_BYTES:,} (MAX_TEXT_BYTES)"
            )
    first = cell_kinds[on[0]]
    kind = "text" if first in ("text", "text-inline") else first
    for i, k in enumerate(cell_kinds):
        if k == "absent":
            continue
        k = "text" if k in ("text", "text-inline") else k
        if k != kind:
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: a {k} value in a {kind} column")
    files: list[Path | None] = []
    for i, (v, k) in enumerate(zip(vals, cell_kinds)):
        if k in ("text-inline", "absent"):
            files.append(None)
            continue
        try:
            file = (root / v).resolve()
            inside = file.is_relative_to(root)
            exists, regular = file.exists(), file.is_file()
        except (OSError, RuntimeError, ValueError) as e:  # too long, a NUL byte, a symlink loop
            raise PMRFusionError(
                f"manifest {path}: {_where(i, m)}: not a usable path: {first_line(e)}"
            ) from None
        if not allow_outside and not inside:
            raise PMRFusionError(
                f"manifest {path}: {_where(i, m)}: {v} leads outside the manifest's folder {root} "
                f"(to {file}): move it inside, or allow it (load_manifest(allow_outside=True), "
                f"{ALLOW_OUTSIDE_ENV}=1)"
            )
        if not exists:
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: file not found: {v}")
        if not regular:
            raise PMRFusionError(f"manifest {path}: {_where(i, m)}: {v} is not a regular file")
        files.append(file)
    return kind, files


def _check_contents(
    path: Path,
    checker: ContentChecker,
    mods: list[str],
    kinds: dict[str, str],
    files: dict[str, list[Path | None]],
    values: dict[str, list[str]],
) -> dict[str, list[dict[str, Any] | None]]:
    """Header info per row and column (None for inline text), every distinct file checked once, in
    parallel; the first failure in (column, row) order is the error."""
    jobs: list[tuple[str, Path]] = []
    first_row: list[tuple[str, int]] = []  # (column, row) that first lists each job
    index: dict[tuple[str, Path], int] = {}
    for m in mods:
        for i, f in enumerate(files[m]):
            if f is not None and (kinds[m], f) not in index:
                index[(kinds[m], f)] = len(jobs)
                jobs.append((kinds[m], f))
                first_row.append((m, i))
    results = check_files(checker, jobs)
    if results and isinstance(results[-1], PMRFusionError):
        m, i = first_row[len(results) - 1]
        what = f"cannot read {values[m][i]}" if isinstance(results[-1], UnreadableFile) else values[m][i]
        raise PMRFusionError(f"manifest {path}: {_where(i, m)}: {what}: {results[-1]}")
    return {m: [None if f is None else results[index[(kinds[m], f)]] for f in files[m]] for m in mods}


def _column_shape(
    path: Path,
    m: str,
    kind: str,
    vals: list[str],
    infos: list,
    audio_seconds: float,
    resample: bool,
    rows: list[int] | None = None,
    resize: tuple[int, int] | None = None,
) -> tuple[tuple[int, ...], Any]:
    """(decoded sample shape, extra) of one modality column from its present files' header info
    (`rows`: their row numbers, for messages)."""
    rows = list(range(len(vals))) if rows is None else rows
    if kind == "text":
        return (TEXT_DIM,), None
    if kind == "image":
        size, mode0 = (infos[0]["w"], infos[0]["h"]), infos[0]["mode"]
        mode = "L" if grey_mode(mode0) else "RGB"
        if resize is not None:
            return (1 if mode == "L" else 3, resize[1], resize[0]), mode
        for i, info in enumerate(infos):
            s = (info["w"], info["h"])
            if s != size:
                raise PMRFusionError(
                    f"manifest {path}: {_where(rows[i], m)}: image {vals[i]} is {s[0]}x{s[1]}, "
                    f"the column's first image is {size[0]}x{size[1]} (set image_size to resize them)"
                )
        return (1 if mode == "L" else 3, size[1], size[0]), mode
    if kind == "audio":
        rates = Counter(info["rate"] for info in infos)
        target = rates.most_common(1)[0][0]
        note = None
        if len(rates) > 1:
            if not resample:
                i = next(j for j, info in enumerate(infos) if info["rate"] != target)
                raise PMRFusionError(
                    f"manifest {path}: {_where(rows[i], m)}: {vals[i]} has sample rate "
                    f"{infos[i]['rate']} Hz, "
                    f"the column's is {target} Hz"
                )
            note = f"column '{m}': wavs at {sorted(rates)} Hz resampled to {target} Hz"
        length = int(round(audio_seconds * target))
        if not MIN_AUDIO_LENGTH <= length <= MAX_AUDIO_LENGTH:
            raise PMRFusionError(
                f"manifest {path}: column '{m}': {audio_seconds:g} s at {target} Hz is {length:,} samples "
                f"per clip, outside {MIN_AUDIO_LENGTH}..{MAX_AUDIO_LENGTH:,} (MIN/MAX_AUDIO_LENGTH)"
            )
        return (length,), (target, length, note)
    shape = tuple(infos[0]["shape"])
    for i, info in enumerate(infos):
        s = tuple(info["shape"])
        if s != shape:
            raise PMRFusionError(
                f"manifest {path}: {_where(rows[i], m)}: array of shape {s}, expected {shape}"
            )
    return shape, None


__all__ = ["ID_COLUMN", "ManifestSource", "load_manifest", "manifest_from_table", "parse_numbers"]
