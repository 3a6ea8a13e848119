"""Hostile raw files and manifests through `pmrfusion bench` (issue 23, raw-manifest part).

Every case ends in one `error: ...` line first on stderr naming the row, column and problem, exit
code 2, no traceback and nothing under --out, found at load time (before any training): each case
runs in-process through `cli.main` (cheap), and one or more per failure class in a real
`python -m pmrfusion` subprocess. Valid inputs that used to be refused train and give results.
"""

from __future__ import annotations

import json
import os
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_error, run_main, subprocess_run
from PIL import Image
from scipy.io import wavfile


def rows_in(folder: Path, n: int = 8, audio: bool = False) -> list[dict[str, str]]:
    """n valid rows: 8x8 grey PNG and a .npy whose values give the label, optional int16 wav;
    0-based rows 0 and 4 are in the test split."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        label = i % 2
        Image.fromarray(np.full((8, 8), 40 + 150 * label, np.uint8)).save(folder / f"im{i}.png")
        np.save(folder / f"v{i}.npy", np.full(3, label, np.float32))
        row = {"img": f"im{i}.png", "vec": f"v{i}.npy"}
        if audio:
            wave_ = (np.sin(np.arange(900) * (0.1 + 0.2 * label)) * 8000).astype(np.int16)
            wavfile.write(folder / f"a{i}.wav", 8000, wave_)
            row["aud"] = f"a{i}.wav"
        row.update(label=str(label), split="test" if i % 4 == 0 else "train")
        rows.append(row)
    return rows


def write_csv(folder: Path, rows: list[dict[str, str]], name: str = "m.csv") -> Path:
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(r[c] for c in cols) for r in rows]
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder / name


def write_jsonl(folder: Path, rows: list[dict], name: str = "m.jsonl") -> Path:
    (folder / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder / name


def edited(edit: Callable[[Path, list[dict[str, str]]], object], audio: bool = False):
    """A case: valid rows in `d`, then `edit(d, rows)`, written as m.csv."""

    def make(d: Path) -> Path:
        rows = rows_in(d, audio=audio)
        edit(d, rows)
        return write_csv(d, rows)

    return make


def truncate(file: Path, keep: float) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])


def flip_idat_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    at = data.index(b"IDAT") + 6
    data[at] ^= 0xFF
    file.write_bytes(bytes(data))


def jpeg(d: Path, name: str, keep: float = 1.0) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / name)
    truncate(d / name, keep)


def npy_header_only(file: Path, shape: tuple[int, ...]) -> None:
    """A .npy whose header says `shape` (float32), without the data: only a pre-flight can refuse it."""
    with file.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})


def wav_rate(file: Path, rate: int) -> None:
    data = bytearray(file.read_bytes())
    data[24:28] = rate.to_bytes(4, "little")  # the canonical header's sample rate field
    file.write_bytes(bytes(data))


def wav_24bit(file: Path, n: int = 900, rate: int = 8000) -> None:
    samples = (np.sin(np.arange(n) * 0.3) * 2**22).astype(np.int32)
    with wave.open(str(file), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(rate)
        w.writeframes(b"".join(int(s).to_bytes(3, "little", signed=True) for s in samples))


def png16(file: Path, values: np.ndarray) -> None:
    Image.fromarray(values.astype(np.uint16)).save(file)


def extra_field(row: int) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        path = write_csv(d, rows_in(d))
        lines = path.read_text().splitlines()
        lines[row] += ",surplus"
        path.write_text("\n".join(lines) + "\n")
        return path

    return make


def duplicate_column(d: Path) -> Path:
    rows = rows_in(d)
    lines = ["img,img,label,split"] + [f"{r['img']},{r['vec']},{r['label']},{r['split']}" for r in rows]
    (d / "m.csv").write_text("\n".join(lines) + "\n")
    return d / "m.csv"


def json_list_cell(d: Path) -> Path:
    # the label hidden in a list cell: once read as text, it leaked into the features
    return write_jsonl(d, [dict(r, feat=[0.5, int(r["label"])]) for r in rows_in(d)])


def jsonl_key_in_row_2(d: Path) -> Path:
    rows: list[dict] = [dict(r) for r in rows_in(d)]
    rows[1]["txt"] = "first seen in row 2"
    return write_jsonl(d, rows)


def outside(kind: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        rows = rows_in(d / "data")
        secret = d / "secret.npy"
        np.save(secret, np.zeros(3, np.float32))
        if kind == "dotdot":
            rows[2]["vec"] = "../secret.npy"
        elif kind == "absolute":
            rows[2]["vec"] = str(secret)
        else:
            os.symlink(secret, d / "data" / "link.npy")
            rows[2]["vec"] = "link.npy"
        return write_csv(d / "data", rows)

    return make


def upd(row: int, **cells: str) -> Callable[[Path, list], object]:
    return lambda d, rows: rows[row].update(cells)


def float_wav(row: int, value: float) -> Callable[[Path, list], object]:
    return lambda d, rows: wavfile.write(d / f"a{row}.wav", 8000, np.full(900, value, np.float32))


# (id, make(folder) -> manifest, needle in the error line); grouped by the failure classes of the issue
CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    # content: decoded up front, so a bad file in the test split stops the run before training
    ("truncated-png-test-split", edited(lambda d, r: truncate(d / "im0.png", 0.6)),
     "row 1, column 'img': cannot read im0.png"),
    ("corrupt-png", edited(lambda d, r: flip_idat_byte(d / "im2.png")),
     "row 3, column 'img': cannot read im2.png"),
    ("truncated-jpeg", edited(lambda d, r: (jpeg(d, "x.jpg", 0.6), r[3].update(img="x.jpg"))),
     "row 4, column 'img': cannot read x.jpg"),
    ("nan-npy-train-row", edited(lambda d, r: np.save(d / "v1.npy", np.array([0, np.nan, 1], np.float32))),
     "row 2, column 'vec': v1.npy: holds 1 NaN/inf values"),
    ("inf-npy-test-row", edited(lambda d, r: np.save(d / "v4.npy", np.array([np.inf, 0, 1]))),
     "row 5, column 'vec': v4.npy: holds 1 NaN/inf values"),
    ("float64-beyond-float32", edited(lambda d, r: np.save(d / "v3.npy", np.array([1e300, 0, 1]))),
     "beyond the float32 range"),
    ("nan-float-wav-train-row", edited(float_wav(1, np.nan), audio=True),
     "row 2, column 'aud': a1.wav: holds 900 NaN"),
    ("inf-float-wav-test-row", edited(float_wav(4, np.inf), audio=True),
     "row 5, column 'aud': a4.wav: holds 900 NaN"),
    ("int-valued-float-wav", edited(float_wav(2, 1000.0), audio=True), "FLOAT_AUDIO_PEAK"),
    ("complex-npy", edited(lambda d, r: np.save(d / "v2.npy", np.ones(3) * 1j)),
     "v2.npy: holds complex numbers"),
    ("truncated-wav", edited(lambda d, r: truncate(d / "a3.wav", 0.5), audio=True),
     "row 4, column 'aud': cannot read a3.wav: truncated"),
    # size pre-flight, from headers, before decoding
    ("81-mpx-like-png", edited(lambda d, r: Image.new("L", (1100, 1000)).save(d / "im5.png")),
     "row 6, column 'img': im5.png: image is 1100x1000 = 1,100,000 pixels, more than the limit"),
    ("3e7-element-npy", edited(lambda d, r: npy_header_only(d / "v6.npy", (30_000_000,))),
     "row 7, column 'vec': v6.npy: array of shape (30000000,) holds 30,000,000 values"),
    ("big-text-file", edited(lambda d, r: ((d / "t.txt").write_text("word " * 420_000),
                                           [x.update(txt="t.txt") for x in r])), "MAX_TEXT_BYTES"),
    # manifest parsing: tracebacks before
    ("extra-field-first-row", extra_field(1), "row 1 (line 2) has 5 fields, the header has 4"),
    ("cell-over-1-mib", edited(lambda d, r: [x.update(txt="w " * (600_000 if i == 2 else 1))
                                             for i, x in enumerate(r)]),
     "line 4: a cell is longer than 1,048,576 characters"),
    ("label-beyond-int64", edited(upd(3, label="99999999999999999999")), "row 4, column 'label'"),
    ("label-of-5000-digits", edited(upd(3, label="9" * 5000)), "row 4, column 'label'"),
    ("wav-at-0-hz", edited(lambda d, r: wav_rate(d / "a2.wav", 0), audio=True),
     "row 3, column 'aud': a2.wav: sample rate 0 Hz"),
    ("0-d-npy", edited(lambda d, r: np.save(d / "v2.npy", np.float32(1))),
     "row 3, column 'vec': v2.npy: holds a 0-d"),
    ("empty-npy", edited(lambda d, r: np.save(d / "v2.npy", np.zeros(0, np.float32))),
     "holds an empty array"),
    ("string-npy", edited(lambda d, r: np.save(d / "v2.npy", np.array(["a", "b", "c"]))), "holds strings"),
    ("1x1-images", edited(lambda d, r: [Image.new("L", (1, 1)).save(d / f"im{i}.png") for i in range(8)]),
     "row 1, column 'img': im0.png: image is 1x1: images need at least 4x4"),
    ("3x3-images", edited(lambda d, r: [Image.new("L", (3, 3)).save(d / f"im{i}.png") for i in range(8)]),
     "image is 3x3"),
    # accepted silently before
    ("extra-field-later-row", extra_field(4), "row 4 (line 5) has 5 fields"),
    ("duplicate-column", duplicate_column, "column 'img' appears twice in the header"),
    ("label-1_0", edited(upd(3, label="1_0")), "row 4, column 'label': label '1_0' is not an integer"),
    ("json-list-cell", json_list_cell, "row 1, column 'feat': a JSON array"),
    ("jsonl-key-first-in-row-2", jsonl_key_in_row_2, "row 2 (line 2) has other keys than row 1"),
    ("duplicate-id", edited(lambda d, r: [x.update(id=f"s{i % 7}") for i, x in enumerate(r)]),
     "row 8, column 'id': sample id 's0' repeats row 1's"),
    # containment
    ("dotdot-path", outside("dotdot"),
     "row 3, column 'vec': ../secret.npy leads outside the manifest's folder"),
    ("absolute-path", outside("absolute"), "leads outside the manifest's folder"),
    ("symlink-out", outside("symlink"), "row 3, column 'vec': link.npy leads outside"),
    ("nul-in-path", lambda d: write_jsonl(d, [dict(r, vec="v\u0000.npy") for r in rows_in(d)]),
     "row 1, column 'vec': not a usable path"),
    ("path-too-long", edited(upd(2, vec="v" * 5000 + ".npy")), "row 3, column 'vec': not a usable path"),
]  # fmt: skip

# one or two per failure class also in a real process
SUBPROCESS = ["truncated-png-test-split", "nan-npy-train-row", "3e7-element-npy", "extra-field-first-row",
              "wav-at-0-hz", "json-list-cell", "symlink-out"]  # fmt: skip
BY_ID = {c[0]: c for c in CASES}


def bench_args(manifest: Path, out: Path) -> list[str]:
    return ["bench", "--dataset", str(manifest), "--epochs", "1", "--seeds", "1", "--methods", "concat",
            "--out", str(out), "--quiet"]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_raw_input_is_one_error_line_before_training(tmp_path, capsys, monkeypatch, case):
    _, make, needle = case
    monkeypatch.setenv("PMRFUSION_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PMRFUSION_MANIFEST_ALLOW_OUTSIDE", raising=False)
    manifest = make(tmp_path)
    out = tmp_path / "out"
    code, err = run_main(bench_args(manifest, out), capsys)
    assert_one_error(code, err, needle)
    assert str(manifest) in err.splitlines()[0]
    assert not out.exists()


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_raw_input_in_a_real_process(tmp_path, name):
    _, make, needle = BY_ID[name]
    manifest = make(tmp_path)
    out = tmp_path / "out"
    r = subprocess_run(bench_args(manifest, out), tmp_path, PMRFUSION_CACHE=str(tmp_path / "cache"))
    assert_one_error(r.returncode, r.stderr, needle)
    assert not out.exists()


def test_valid_inputs_that_were_refused_now_train(tmp_path):
    """UTF-8 BOM (as Excel writes), 24-bit PCM wav, inline text ending in '.png', an `id` column
    (not a modality), 16-bit PNGs (scaled to 8 bits) and a 200 KiB text cell: a normal run."""
    d = tmp_path / "data"
    rows = rows_in(d, audio=True)
    for i, r in enumerate(rows):
        png16(d / f"im{i}.png", np.full((8, 8), 10_000 + 40_000 * (i % 2)))
        wav_24bit(d / f"a{i}.wav")
        r["txt"] = f"a photo of cat{i}.png" if i != 3 else "long " * 40_000
        r["id"] = f"sample-{i}"
    path = write_csv(d, rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    out = tmp_path / "out"
    r = subprocess_run(bench_args(path, out), tmp_path, PMRFUSION_CACHE=str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = " ".join(r.stdout.split())  # rich wraps long lines
    modalities = "img image (1, 8, 8), vec array (3,), aud audio (8000,), txt text (256,)"
    assert f"4 raw modalities ({modalities})" in summary
    assert (out / "results.json").exists()
