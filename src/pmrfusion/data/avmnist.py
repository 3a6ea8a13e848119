"""Built-in `avmnist`: MNIST test images paired with Free Spoken Digit Dataset recordings.

Decoding: the IDX files (gzip) and the 8 kHz int16 wavs are read here (no external loader);
each recording is cropped / zero-padded to 1 s (8000 samples). The decoded arrays are cached
in `<cache>/avmnist-v1.npz` (cache: $PMRFUSION_CACHE, else ~/.cache/pmrfusion) so later
runs skip the 2,500 wav decodes.

Pairing without leakage (see docs/avmnist.md): the 10,000 images are split first (seeded,
stratified: 80% train, 20% test); each image of digit d is then paired with one recording of
digit d drawn uniformly (seeded) from takes 5-49 for train images and takes 0-4 for test
images, so no test recording is ever seen in training. The validation split is carved from
the training pairs later (`with_validation`).
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np

from pmrfusion.data.raw import ArraySource, RawMultimodalData, fit_length
from pmrfusion.data.splits import stratified_split
from pmrfusion.errors import PMRFusionError

SAMPLE_RATE = 8000
AUDIO_LENGTH = 8000  # 1 s
TEST_TAKES = range(0, 5)
PAIRING_SEED = 0
CACHE_ENV = "PMRFUSION_CACHE"
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pmrfusion")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Decode an IDX file (optionally gzip-compressed): magic 0x0000, dtype code, ndim, big-endian dims."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise PMRFusionError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise PMRFusionError(f"{path}: not an IDX file (bad magic)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise PMRFusionError(f"{path}: unknown IDX data type 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    dt = np.dtype(dtypes[raw[2]])
    data = np.frombuffer(raw, dtype=dt, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise PMRFusionError(f"{path}: header says {tuple(dims)} but holds {data.size} values")
    return data.reshape(tuple(dims)).astype(dt.newbyteorder("="))


def read_fsdd(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(waves (R, 8000) int16, digits (R,), takes (R,), speakers) of every `<d>_<speaker>_<take>.wav`."""
    from scipy.io import wavfile

    folder = Path(folder)
    files = sorted(p for p in folder.glob("*.wav") if _NAME.match(p.name))
    if not files:
        raise PMRFusionError(f"no FSDD recordings (<digit>_<speaker>_<take>.wav) in {folder}")
    waves = np.zeros((len(files), AUDIO_LENGTH), dtype=np.int16)
    digits, takes, speakers = [], [], []
    for i, p in enumerate(files):
        rate, x = wavfile.read(p)
        if rate != SAMPLE_RATE or x.dtype != np.int16 or x.ndim != 1:
            raise PMRFusionError(f"{p}: expected 8 kHz mono int16, got {rate} Hz {x.dtype} {x.shape}")
        waves[i] = fit_length(x, AUDIO_LENGTH)
        d, spk, take = _NAME.match(p.name).groups()
        digits.append(int(d))
        takes.append(int(take))
        speakers.append(spk)
    return waves, np.array(digits), np.array(takes), speakers


def _decoded(folder: Path) -> dict[str, np.ndarray]:
    cache = cache_dir() / "avmnist-v1.npz"
    if cache.exists():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    images = read_idx(folder / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(folder / "mnist" / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    waves, digits, takes, _ = read_fsdd(folder / "fsdd" / "recordings")
    arrays = {"images": images, "labels": labels, "waves": waves, "digits": digits, "takes": takes}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home: decode again next time
    return arrays


def pair_recordings(
    image_labels: np.ndarray, test_rows: np.ndarray, digits: np.ndarray, takes: np.ndarray, seed: int
) -> np.ndarray:
    """Recording index per image: same digit; test images only takes 0-4, the others takes 5-49."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(image_labels), dtype=bool)
    is_test[test_rows] = True
    rec_test = np.isin(takes, list(TEST_TAKES))
    out = np.empty(len(image_labels), dtype=np.int64)
    for d in np.unique(image_labels):
        for test in (False, True):
            rows = np.flatnonzero((image_labels == d) & (is_test == test))
            pool = np.flatnonzero((digits == d) & (rec_test == test))
            if len(rows) and not len(pool):
                raise PMRFusionError(f"no {'test' if test else 'train'} recording of digit {d}")
            out[rows] = pool[rng.integers(0, len(pool), len(rows))]
    return out


def load_avmnist(folder: str | os.PathLike, seed: int = PAIRING_SEED) -> RawMultimodalData:
    """The built-in AV-MNIST pairs (image (1, 28, 28) uint8, audio (8000,) float at 8 kHz)."""
    folder = Path(folder)
    if not (folder / "mnist").is_dir() or not (folder / "fsdd" / "recordings").is_dir():
        raise PMRFusionError(f"{folder}: expected mnist/ and fsdd/recordings/ (see PROVENANCE.md)")
    a = _decoded(folder)
    labels = a["labels"]
    splits = stratified_split(labels, 0.2, seed)
    audio_index = pair_recordings(labels, splits["test"], a["digits"], a["takes"], seed)
    source = ArraySource(
        {"image": a["images"][:, None], "audio": a["waves"]},
        {"image": np.arange(len(labels)), "audio": audio_index},
    )
    return RawMultimodalData(
        "avmnist",
        {"image": "image", "audio": "audio"},
        {"image": (1, 28, 28), "audio": (AUDIO_LENGTH,)},
        labels,
        splits,
        source,
        10,
        {"audio": SAMPLE_RATE},
        [f"images split 80/20 then paired with same-digit recordings (seed {seed}); test takes 0-4 only"],
    )


def export_manifest(
    data: RawMultimodalData, folder: str | os.PathLike, rows: int, distinct: int | None = None, seed: int = 0
) -> Path:
    """Write `rows` AV-MNIST pairs as PNG + wav files and a `manifest.csv` (with a split column).

    With `distinct`, only that many pairs are written as files and the manifest's rows cycle
    through them (large manifests for streaming tests). Returns the manifest path.
    """
    from PIL import Image
    from scipy.io import wavfile

    folder = Path(folder)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    split_of = np.empty(data.num_samples, dtype=object)
    for name, idx in data.splits.items():
        split_of[idx] = name
    picks = rng.permutation(data.num_samples)[: distinct or rows]
    files = []
    for i, r in enumerate(picks):
        sample = data.source.get(int(r), ["image", "audio"])
        Image.fromarray(sample["image"].numpy()[0]).save(folder / "img" / f"{i}.png")
        wave = (sample["audio"].numpy() * 32767).astype(np.int16)
        wavfile.write(folder / "wav" / f"{i}.wav", SAMPLE_RATE, wave)
        files.append((f"img/{i}.png", f"wav/{i}.wav", int(data.labels[r]), split_of[r]))
    path = folder / "manifest.csv"
    with path.open("w") as f:
        f.write("image,audio,label,split\n")
        for j in range(rows):
            img, wav, label, split = files[j % len(files)]
            f.write(f"{img},{wav},{label},{split}\n")
    return path


__all__ = ["export_manifest", "load_avmnist", "pair_recordings", "read_fsdd", "read_idx"]
