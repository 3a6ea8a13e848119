"""CMU-MOSI (utterance-level text / audio / video features, sentiment in [-3, 3]): a regression dataset.

Files in ``<data root>/mosi`` (see its PROVENANCE.md): ``mosi.npz`` with the leakage-free
speaker-independent split, ``utterances.tsv`` with the raw transcripts, ``splits_cmu_standard.npz``.
Variants:
- ``mosi``: the provided features (text = CNN over word2vec, 100-d).
- ``mosi-minilm``: text = frozen all-MiniLM-L6-v2 embeddings of the transcripts (384-d, cached).
- ``mosi-text``: raw data (`RawMultimodalData`, trained with encoders): text = the transcripts,
  tokenised at decode time for the `minilm` encoder (its default here: fine-tuned end to end),
  audio / video = the provided feature vectors as `array` modalities; same split as ``mosi``.
- ``mosi-cmu-standard``: the CMU-MultimodalSDK standard folds. The feature extractors were trained on
  a split containing most of its test videos, so its numbers are inflated: never report them.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.raw import TEXT_DIM, ArraySource, RawMultimodalData
from pmrfusion.data.text_embedders import text_embedder
from pmrfusion.errors import PMRFusionError
from pmrfusion.tasks import REGRESSION

CMU_STANDARD_WARNING = (
    "mosi-cmu-standard: the features were extracted by models trained on most of this split's test "
    "videos (leakage); do not report these numbers, use 'mosi'"
)


def read_transcripts(folder: Path, expected_rows: int | None = None) -> list[str]:
    """The raw transcript of every row of mosi.npz, in row order, from utterances.tsv."""
    path = folder / "utterances.tsv"
    if not path.exists():
        raise PMRFusionError(f"transcripts not found: {path}")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or "transcript" not in rows[0] or "row" not in rows[0]:
        raise PMRFusionError(f"{path}: expected columns 'row' and 'transcript'")
    order = np.array([int(r["row"]) for r in rows])
    if not np.array_equal(order, np.arange(len(rows))):
        raise PMRFusionError(f"{path}: rows are not numbered 0..{len(rows) - 1} in order")
    if expected_rows is not None and len(rows) != expected_rows:
        raise PMRFusionError(f"{path}: {len(rows)} transcripts but mosi.npz has {expected_rows} rows")
    return [r["transcript"] or "" for r in rows]


def _read_npz(folder: Path) -> dict[str, np.ndarray]:
    path = folder / "mosi.npz"
    if not path.exists():
        raise PMRFusionError(f"dataset file not found: {path}")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _splits(folder: Path, arrays: dict[str, np.ndarray], split: str) -> tuple[dict, str, list[str]]:
    """(row indices per split, name suffix, notes) of split "speaker" or "cmu-standard"."""
    if split == "speaker":
        return {s: arrays[f"{s}_idx"] for s in ("train", "val", "test")}, "", []
    if split == "cmu-standard":
        with np.load(folder / "splits_cmu_standard.npz") as z:
            splits = {s: z[f"{s}_idx"] for s in ("train", "val", "test")}
        warnings.warn(CMU_STANDARD_WARNING, stacklevel=3)
        return splits, "-cmu-standard", [CMU_STANDARD_WARNING]
    raise PMRFusionError(f"unknown MOSI split '{split}': use 'speaker' or 'cmu-standard'")


def load_mosi(
    folder: Path, text: str = "features", split: str = "speaker", cache_dir: str | None = None
) -> MultimodalData:
    """CMU-MOSI from `folder`; text "features" or "minilm"; split "speaker" or "cmu-standard"."""
    arrays = _read_npz(folder)
    features = {m: arrays[f"x_{m}"] for m in ("text", "audio", "video")}
    name, notes = "mosi", []
    if text == "minilm":
        embed = text_embedder("minilm")
        features["text"] = embed(read_transcripts(folder, len(arrays["y"])), cache_dir)
        name += "-minilm"
        notes.append("text: all-MiniLM-L6-v2 sentence embeddings of the transcripts (frozen)")
    elif text != "features":
        raise PMRFusionError(f"unknown MOSI text source '{text}': use 'features' or 'minilm'")
    splits, suffix, split_notes = _splits(folder, arrays, split)
    notes += split_notes
    return MultimodalData(name + suffix, features, arrays["y"], splits, notes=notes, task=REGRESSION)


def load_mosi_text(folder: Path, split: str = "speaker") -> RawMultimodalData:
    """CMU-MOSI as raw data: the transcripts as a text modality (default encoder `minilm`, so they
    are tokenised at decode time), audio and video feature vectors as `array` modalities."""
    arrays = _read_npz(folder)
    n = len(arrays["y"])
    texts = read_transcripts(folder, n)
    vectors = {m: arrays[f"x_{m}"].astype(np.float32) for m in ("audio", "video")}
    rows = np.arange(n)
    source = ArraySource(vectors, {m: rows for m in vectors}, {"text": texts})
    kinds = {"text": "text", "audio": "array", "video": "array"}
    shapes = {"text": (TEXT_DIM,), **{m: x.shape[1:] for m, x in vectors.items()}}
    splits, suffix, notes = _splits(folder, arrays, split)
    notes = ["text: raw transcripts (encoder minilm unless --encoders says otherwise)", *notes]
    return RawMultimodalData(
        "mosi-text" + suffix, kinds, shapes, arrays["y"], splits, source, notes=notes,
        task=REGRESSION, encoder_defaults={"text": "minilm"},
    )  # fmt: skip


__all__ = ["CMU_STANDARD_WARNING", "load_mosi", "load_mosi_text", "read_transcripts"]
