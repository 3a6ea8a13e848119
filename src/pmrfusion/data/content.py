"""Content checks of the raw files a manifest lists: size pre-flight, full decode, dtype, finiteness, range.

`load_manifest` runs `check_file` on every distinct file, in a thread pool (`check_files`), before any
training, so a truncated image, NaN in an array or a float wav, or a file too large to train on is
one error at load time instead of a traceback in a `DataLoader` worker. A file is decoded exactly as
the training loader decodes it (`decode_image`, `read_wav`, `load_array`: the same functions serve
`ManifestSource`).

Per file, first the header (no decode) against the size limits below, then the whole content:

- image: PNG/JPEG/BMP (any format Pillow reads), at least `MIN_IMAGE_SIDE` pixels a side, at most
  `MAX_IMAGE_PIXELS` pixels; fully decoded (a truncated or corrupt file is refused). 16-bit grey
  (`I;16`, `I`) is scaled to 8 bits, round(v / 257) (0..65535 -> 0..255), never saturated; 32-bit
  values outside 0..65535 and float images (mode `F`) are refused.
- audio: RIFF/WAVE, PCM 8/16/24/32/64-bit or IEEE float 32/64-bit, sample rate 1..`MAX_SAMPLE_RATE`
  Hz, at least one sample, at most `MAX_AUDIO_FILE_SAMPLES` (frames x channels); float samples must
  be finite and within +-`FLOAT_AUDIO_PEAK` (float audio is full scale at 1).
- array: `.npy` of real numbers (bool, int, uint, float; complex, strings, objects and records are
  refused), at least 1-D and not empty, at most `MAX_ARRAY_ELEMENTS` values, finite as float32.
- text: UTF-8, at most `MAX_TEXT_BYTES`.

A file that passed is remembered by (kind, resolved path, size, mtime, inode): in memory for this
process and, by default, on disk in `<cache>/manifest-checks/` ($PMRFUSION_CACHE, else
~/.cache/pmrfusion), so loading the manifest again decodes only new or changed files.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pmrfusion.errors import PMRFusionError, first_line

MIN_IMAGE_SIDE = 4  # the `cnn` encoder max-pools twice by 2
MAX_IMAGE_PIXELS = 1024 * 1024  # width x height of one image
MAX_ARRAY_ELEMENTS = 2**20  # values in one .npy (the `mlp` encoder's first layer has width x this weights)
MAX_AUDIO_FILE_SAMPLES = 2**24  # frames x channels in one wav (decoded whole before the crop)
MAX_SAMPLE_RATE = 768_000
MIN_AUDIO_LENGTH = 256  # samples per decoded clip: the audio front-end's STFT window
MAX_AUDIO_LENGTH = 2**22  # samples per decoded clip (audio_seconds x rate)
FLOAT_AUDIO_PEAK = 4.0
MAX_TEXT_BYTES = 2**20  # one .txt file, and one inline text cell (characters)
CHECK_VERSION = 1  # bump when a check changes: older cache entries are then ignored
CACHE_ENV = "PMRFUSION_CACHE"

GREY_MODES = ("1", "L", "I", "F")  # a column whose first image has one of these (or I;16*) is grey


class UnreadableFile(PMRFusionError):
    """The file cannot be decoded at all (not that format, truncated, corrupt); other check failures
    are plain `PMRFusionError`s."""


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


# ----------------------------------------------------------------------------- images


def grey_mode(mode: str) -> bool:
    return mode in GREY_MODES or mode.startswith("I;16")


def _to_8bit(im: Any) -> Any:
    """A 16/32-bit grey Pillow image as 8-bit 'L', round(v / 257); values outside 0..65535 refused."""
    from PIL import Image

    a = np.asarray(im)
    if a.size and (int(a.min()) < 0 or int(a.max()) > 65535):
        raise PMRFusionError(
            f"{im.mode} image values {int(a.min())}..{int(a.max())} are outside 0..65535 (16-bit)"
        )
    return Image.fromarray(((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8), "L")


def decode_image(path: Path, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """(C, H, W) uint8 of the image converted to `mode` ('L' or 'RGB'; an alpha channel is dropped),
    resized (bilinear) to `size` = (width, height) if given; 16-bit grey scaled, not clipped."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode == "F":
            raise PMRFusionError("32-bit float images (mode F) are not supported: save 8- or 16-bit")
        if im.mode == "I" or im.mode.startswith("I;16"):
            im = _to_8bit(im)
        im = im.convert(mode)
        if size is not None and im.size != tuple(size):
            im = im.resize(tuple(size), Image.BILINEAR)
        arr = np.asarray(im)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()


def _image_header(path: Path) -> dict[str, Any]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return {"w": int(im.size[0]), "h": int(im.size[1]), "mode": str(im.mode)}
    except Image.DecompressionBombError as e:
        raise PMRFusionError(f"image too large: {first_line(e)}") from None


def _image_limits(info: dict[str, Any]) -> None:
    w, h = info["w"], info["h"]
    if min(w, h) < MIN_IMAGE_SIDE:
        raise PMRFusionError(
            f"image is {w}x{h}: images need at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels "
            "(the cnn encoder pools twice)"
        )
    if w * h > MAX_IMAGE_PIXELS:
        raise PMRFusionError(
            f"image is {w}x{h} = {w * h:,} pixels, more than the limit of {MAX_IMAGE_PIXELS:,} "
            "(MAX_IMAGE_PIXELS): resize the images"
        )


def _image_content(path: Path, info: dict[str, Any]) -> None:
    decode_image(path, "L" if grey_mode(info["mode"]) else "RGB")


# ----------------------------------------------------------------------------- audio

WAV_PCM, WAV_FLOAT, WAV_EXTENSIBLE = 1, 3, 0xFFFE


def wav_header(path: Path) -> dict[str, Any]:
    """rate, channels, bits, format (1 PCM, 3 float) and frames of a RIFF/WAVE file, from its chunks."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            raise UnreadableFile("not a WAV file (no RIFF/WAVE header)")
        e = "<" if head[:4] == b"RIFF" else ">"
        fmt: tuple[int, ...] | None = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise UnreadableFile("no 'data' chunk (the file is truncated or not a WAV file)")
            cid, n = chunk[:4], struct.unpack(e + "I", chunk[4:])[0]
            if cid == b"fmt ":
                body = f.read(n)
                if len(body) < 16:
                    raise UnreadableFile("the 'fmt ' chunk is too short")
                tag, channels, rate, _, align, bits = struct.unpack(e + "HHIIHH", body[:16])
                if tag == WAV_EXTENSIBLE and len(body) >= 26:
                    tag = struct.unpack(e + "H", body[24:26])[0]
                fmt = (tag, channels, rate, align, bits)
                if n & 1:
                    f.seek(1, 1)
            elif cid == b"data":
                if fmt is None:
                    raise UnreadableFile("the 'data' chunk comes before the 'fmt ' chunk")
                left = size - f.tell()
                if n > left:
                    raise UnreadableFile(
                        f"truncated: the header says {n:,} bytes of samples, the file has {left:,}"
                    )
                break
            else:
                f.seek(n + (n & 1), 1)
    tag, channels, rate, align, bits = fmt
    if (
        tag not in (WAV_PCM, WAV_FLOAT)
        or (tag == WAV_PCM and bits not in (8, 16, 24, 32, 64))
        or (tag == WAV_FLOAT and bits not in (32, 64))
    ):
        raise PMRFusionError(f"unsupported WAV encoding (format {tag}, {bits} bits): use PCM or float")
    if channels < 1 or align != channels * bits // 8:
        raise UnreadableFile(
            f"inconsistent WAV header ({channels} channels, block size {align}, {bits} bits)"
        )
    return {"rate": int(rate), "channels": int(channels), "bits": int(bits), "format": int(tag),
            "frames": int(n // align)}  # fmt: skip


def audio_header(path: Path) -> dict[str, Any]:
    """`wav_header` for .wav; FLAC / OGG (and other formats libsndfile reads) through `soundfile`."""
    if path.suffix.lower() == ".wav":
        return wav_header(path)
    import soundfile

    try:
        info = soundfile.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile's errors
        raise UnreadableFile(f"not a readable audio file: {first_line(e)}") from None
    return {"rate": int(info.samplerate), "channels": int(info.channels), "bits": 0, "format": WAV_FLOAT,
            "frames": int(info.frames)}  # fmt: skip


def _audio_limits(info: dict[str, Any]) -> None:
    rate, samples = info["rate"], info["frames"] * info["channels"]
    if not 1 <= rate <= MAX_SAMPLE_RATE:
        raise PMRFusionError(f"sample rate {rate} Hz is outside 1..{MAX_SAMPLE_RATE} Hz")
    if info["frames"] == 0:
        raise PMRFusionError("the recording holds no samples")
    if samples > MAX_AUDIO_FILE_SAMPLES:
        raise PMRFusionError(
            f"the recording holds {samples:,} samples, more than the limit of {MAX_AUDIO_FILE_SAMPLES:,} "
            "(MAX_AUDIO_FILE_SAMPLES): cut it"
        )


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(rate, mono float32 waveform): integer PCM scaled to [-1, 1], channels averaged. WAV through
    scipy; FLAC / OGG through `soundfile` (float32 in [-1, 1])."""
    from scipy.io import wavfile

    if path.suffix.lower() != ".wav":
        import soundfile

        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return int(rate), data.mean(1).astype(np.float32)
    rate, data = wavfile.read(path)
    x = np.asarray(data)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    elif x.dtype == np.int32:  # 32-bit, and 24-bit (scipy puts it in the top 3 bytes)
        x = x.astype(np.float32) / 2147483648.0
    elif x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif x.dtype == np.int64:
        x = (x.astype(np.float64) / 2.0**63).astype(np.float32)
    else:
        x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(1)
    return int(rate), x


def _audio_content(path: Path, info: dict[str, Any]) -> None:
    from scipy.io import wavfile

    if info["format"] != WAV_FLOAT:
        read_wav(path)  # integer PCM: decodes, always finite and in range
        return
    data = read_wav(path)[1] if path.suffix.lower() != ".wav" else wavfile.read(path)[1]
    x = np.asarray(data)
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise PMRFusionError(f"holds {bad:,} NaN/inf samples")
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > FLOAT_AUDIO_PEAK:
        raise PMRFusionError(
            f"float samples reach {peak:.4g}, beyond +-{FLOAT_AUDIO_PEAK:g} (FLOAT_AUDIO_PEAK): float audio "
            "is full scale at 1 (integer sample values stored as float?)"
        )


# ----------------------------------------------------------------------------- arrays


ARRAY_KIND_NAMES = {
    "c": "complex numbers (the imaginary part would be lost)",
    "U": "strings",
    "S": "bytes",
    "O": "Python objects",
    "V": "records (a structured dtype)",
}


def _array_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        except (ValueError, EOFError, SyntaxError) as e:
            raise UnreadableFile(f"not a .npy array: {first_line(e)}") from None
    return {"shape": [int(s) for s in shape], "dtype": dtype.str, "kind": dtype.kind}


def _array_limits(info: dict[str, Any]) -> None:
    kind, shape = info["kind"], tuple(info["shape"])
    if kind not in "biuf":
        what = ARRAY_KIND_NAMES.get(kind, f"dtype {info['dtype']}")
        raise PMRFusionError(f"holds {what}, not real numbers")
    if not shape:
        raise PMRFusionError("holds a 0-d array (a scalar): save it with shape (1,)")
    size = int(np.prod(shape))
    if size == 0:
        raise PMRFusionError(f"holds an empty array (shape {shape})")
    if size > MAX_ARRAY_ELEMENTS:
        raise PMRFusionError(
            f"array of shape {shape} holds {size:,} values, more than the limit of {MAX_ARRAY_ELEMENTS:,} "
            "(MAX_ARRAY_ELEMENTS): reduce it first"
        )


def load_array(path: Path) -> np.ndarray:
    """The array as float32 (no pickles)."""
    with np.errstate(over="ignore"):
        return np.load(path, allow_pickle=False).astype(np.float32)


def _array_content(path: Path, info: dict[str, Any]) -> None:
    x = np.load(path, allow_pickle=False)
    bad = int(x.size - np.count_nonzero(np.isfinite(x))) if x.dtype.kind == "f" else 0
    if bad:
        raise PMRFusionError(f"holds {bad:,} NaN/inf values")
    with np.errstate(over="ignore"):
        big = int(x.size - np.count_nonzero(np.isfinite(x.astype(np.float32))))
    if big:
        raise PMRFusionError(f"holds {big:,} values beyond the float32 range (+-3.4e38)")


# ----------------------------------------------------------------------------- text


def _text_header(path: Path) -> dict[str, Any]:
    return {"bytes": int(path.stat().st_size)}


def _text_limits(info: dict[str, Any]) -> None:
    if info["bytes"] > MAX_TEXT_BYTES:
        raise PMRFusionError(
            f"text file of {_mib(info['bytes'])}, more than the limit of {_mib(MAX_TEXT_BYTES)} "
            "(MAX_TEXT_BYTES)"
        )


def _text_content(path: Path, info: dict[str, Any]) -> None:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnreadableFile(f"not UTF-8 text: {e}") from None


CHECKS: dict[str, tuple[Callable, Callable, Callable]] = {
    "image": (_image_header, _image_limits, _image_content),
    "audio": (audio_header, _audio_limits, _audio_content),
    "array": (_array_header, _array_limits, _array_content),
    "text": (_text_header, _text_limits, _text_content),
}


# ----------------------------------------------------------------------------- cache and pool


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pmrfusion") / "manifest-checks"


_MEMO: dict[str, tuple[str, dict[str, Any]]] = {}  # "kind|path" -> (stamp, info)
_MEMO_LOCK = threading.Lock()


class ContentChecker:
    """Checks files (header, limits, content) and remembers those that passed, in memory and on disk.

    The disk cache (`cache_file`, None: memory only) maps "kind|path" to the file's stamp (size,
    mtime, inode) and header info: one entry per file, replaced when the file changes. A cache that
    cannot be read or written is ignored.
    """

    def __init__(self, cache_file: Path | None = None):
        self.cache_file = cache_file
        self.disk: dict[str, list] = {}
        self.new: dict[str, tuple[str, dict[str, Any]]] = {}
        self.lock = threading.Lock()
        if cache_file is not None:
            try:
                loaded = json.loads(cache_file.read_text())
                if isinstance(loaded, dict) and loaded.get("version") == CHECK_VERSION:
                    files = loaded.get("files")
                    self.disk = {k: v for k, v in files.items() if isinstance(v, list) and len(v) == 2}
            except (OSError, ValueError, AttributeError):
                pass

    @staticmethod
    def stamp(path: Path) -> str:
        st = path.stat()
        return f"{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"

    def check(self, kind: str, path: Path) -> dict[str, Any]:
        """The file's header info; raises PMRFusionError (without the row) when it fails a check."""
        header, limits, content = CHECKS[kind]
        name = f"{kind}|{path}"
        try:
            stamp = self.stamp(path)
        except OSError as e:
            raise UnreadableFile(first_line(e)) from None
        with _MEMO_LOCK:
            hit = _MEMO.get(name)
        if hit is None or hit[0] != stamp:
            hit = self.disk.get(name)
        if hit is not None and hit[0] == stamp and isinstance(hit[1], dict):
            info = hit[1]
            limits(info)  # limits may have changed since the entry was written
        else:
            try:
                info = header(path)
                limits(info)
                content(path, info)
            except PMRFusionError:
                raise
            except Exception as e:  # noqa: BLE001 - any decoder failure is an unreadable file
                raise UnreadableFile(first_line(e)) from None
            with _MEMO_LOCK:
                _MEMO[name] = (stamp, info)
        if self.disk.get(name) != [stamp, info]:
            with self.lock:
                self.new[name] = (stamp, info)
        return info

    def save(self) -> None:
        """Write the entries checked now over those of the cache file (atomically)."""
        if self.cache_file is None or not self.new:
            return
        files = {**self.disk, **{k: list(v) for k, v in self.new.items()}}
        try:
            from pmrfusion.paths import atomic_write_text

            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"version": CHECK_VERSION, "files": files}, separators=(",", ":"))
            atomic_write_text(self.cache_file, text)
        except OSError:
            pass


def cache_file_for(root: Path, cache: str | os.PathLike | bool) -> Path | None:
    """The on-disk check cache of the manifests in folder `root` (None when `cache` is False)."""
    if cache is False:
        return None
    folder = default_cache_dir() if cache is True else Path(cache)
    return folder / f"{hashlib.sha1(str(root).encode()).hexdigest()[:20]}.json"


def check_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def check_files(
    checker: ContentChecker, jobs: Sequence[tuple[str, Path]], workers: int | None = None
) -> list[dict[str, Any] | PMRFusionError]:
    """Check every (kind, path) job in a thread pool; the results (info, or the error) in job order,
    up to the first error in that order (the jobs after it are cancelled and left out)."""

    def run(job: tuple[str, Path]) -> dict[str, Any] | PMRFusionError:
        try:
            return checker.check(*job)
        except PMRFusionError as e:
            return e

    out: list[dict[str, Any] | PMRFusionError] = []
    try:
        with ThreadPoolExecutor(workers or check_workers(), thread_name_prefix="pmrfusion-check") as pool:
            futures = [pool.submit(run, job) for job in jobs]
            try:
                for fut in futures:
                    out.append(fut.result())
                    if isinstance(out[-1], PMRFusionError):
                        break
            finally:
                for fut in futures:
                    fut.cancel()
    finally:
        checker.save()
    return out


__all__ = [
    "CHECKS",
    "FLOAT_AUDIO_PEAK",
    "MAX_ARRAY_ELEMENTS",
    "MAX_AUDIO_FILE_SAMPLES",
    "MAX_AUDIO_LENGTH",
    "MAX_IMAGE_PIXELS",
    "MAX_SAMPLE_RATE",
    "MAX_TEXT_BYTES",
    "MIN_AUDIO_LENGTH",
    "MIN_IMAGE_SIDE",
    "ContentChecker",
    "audio_header",
    "UnreadableFile",
    "cache_file_for",
    "check_files",
    "decode_image",
    "default_cache_dir",
    "grey_mode",
    "load_array",
    "read_wav",
    "wav_header",
]
