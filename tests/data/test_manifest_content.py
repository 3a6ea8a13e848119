"""Manifest content checks, limits, table parsing and path policy (`data.content`, `data.manifest`).

The CLI side of every failure (one error line, nothing written) is tests/cli/test_bad_raw_files.py;
here: the values decoded for inputs that are now accepted, the check cache, and the options.
"""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import wavfile

from pmrfusion.data import content
from pmrfusion.data.manifest import load_manifest
from pmrfusion.data.raw import text_features
from pmrfusion.errors import PMRFusionError


def _rows(folder: Path, n: int = 8) -> list[dict[str, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        Image.fromarray(np.full((6, 5), 40 + 150 * (i % 2), np.uint8)).save(folder / f"im{i}.png")
        np.save(folder / f"v{i}.npy", np.full(3, i, np.float32))
        rows.append({"img": f"im{i}.png", "vec": f"v{i}.npy", "label": str(i % 2),
                     "split": "test" if i % 4 == 0 else "train"})  # fmt: skip
    return rows


def _csv(folder: Path, rows: list[dict[str, str]], name: str = "m.csv") -> Path:
    cols = list(rows[0])
    (folder / name).write_text(
        "\n".join([",".join(cols)] + [",".join(r[c] for c in cols) for r in rows]) + "\n"
    )
    return folder / name


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PMRFUSION_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PMRFUSION_MANIFEST_ALLOW_OUTSIDE", raising=False)


def test_16_bit_png_is_scaled_to_8_bits_not_saturated(tmp_path):
    rows = _rows(tmp_path)
    values = np.array([[0, 257, 32768, 65535, 1000]] * 6, np.uint16)
    for i in range(8):
        Image.fromarray(values).save(tmp_path / f"im{i}.png")
    assert Image.open(tmp_path / "im0.png").mode == "I;16"
    data = load_manifest(_csv(tmp_path, rows))
    x = data.source.get(0, ["img"])["img"]
    assert data.shapes["img"] == (1, 6, 5) and x.dtype == torch.uint8
    assert x[0, 0].tolist() == [0, 1, 128, 255, 4]  # round(v / 257)
    # in a colour column (its first image RGB) the scaled grey is repeated over 3 channels
    Image.new("RGB", (5, 6), (9, 9, 9)).save(tmp_path / "im0.png")
    rgb = load_manifest(_csv(tmp_path, rows)).source.get(1, ["img"])["img"]
    assert rgb.shape == (3, 6, 5) and rgb[:, 0, 3].tolist() == [255, 255, 255]


def test_24_bit_wav_is_read(tmp_path):
    rows = _rows(tmp_path)
    samples = np.array([0, 1, -1, 2**22, -(2**23)] * 400, np.int64)
    for i, r in enumerate(rows):
        with wave.open(str(tmp_path / f"a{i}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(3)
            w.setframerate(8000)
            w.writeframes(b"".join(int(s).to_bytes(3, "little", signed=True) for s in samples))
        r["aud"] = f"a{i}.wav"
    x = load_manifest(_csv(tmp_path, rows)).source.get(2, ["aud"])["aud"]
    assert torch.allclose(x[:5], torch.tensor([0, 2**-23, -(2**-23), 0.5, -1.0]))


def test_byte_order_mark_csv_and_jsonl_read_as_without(tmp_path):
    rows = _rows(tmp_path)
    plain = load_manifest(_csv(tmp_path, rows))
    bom = _csv(tmp_path, rows, "bom.csv")
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in rows).encode())
    for path in (bom, tmp_path / "bom.jsonl"):
        data = load_manifest(path)
        assert data.kinds == plain.kinds and np.array_equal(data.labels, plain.labels)
        assert {k: v.tolist() for k, v in data.splits.items()} == {
            k: v.tolist() for k, v in plain.splits.items()
        }


def test_id_column_is_the_sample_id_not_a_modality(tmp_path):
    rows = [dict(r, id=f"s{i}") for i, r in enumerate(_rows(tmp_path))]
    data = load_manifest(_csv(tmp_path, rows))
    assert data.modalities == ["img", "vec"]
    assert data.source.ids == [f"s{i}" for i in range(8)]
    assert any("'id'" in n for n in data.notes)


def test_which_cells_are_files(tmp_path):
    rows = _rows(tmp_path)
    Image.new("L", (5, 6)).save(tmp_path / "my photo.png")
    for i, r in enumerate(rows):
        r["txt"] = f"a picture of cat{i}.png"  # inline text: whitespace and no such file
        r["spaced"] = "my photo.png"  # an existing file with a space in its name
    rows[3]["txt"] = "long " * 40_000  # a 200 KiB cell (over csv's default field limit)
    data = load_manifest(_csv(tmp_path, rows))
    assert data.kinds == {"img": "image", "vec": "array", "txt": "text", "spaced": "image"}
    assert torch.equal(
        data.source.get(0, ["txt"])["txt"], torch.from_numpy(text_features("a picture of cat0.png"))
    )
    assert float(data.source.get(3, ["txt"])["txt"].sum()) == 40_000


def test_jsonl_numbers_are_cells_booleans_are_refused(tmp_path):
    rows: list[dict] = [dict(r, num=i) for i, r in enumerate(_rows(tmp_path))]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert load_manifest(path).kinds["num"] == "array"  # a numeric inline column is an array
    rows[5]["num"] = True
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(PMRFusionError, match=r"row 6, column 'num': a JSON boolean"):
        load_manifest(path)


def test_labels_and_targets_are_plain_decimal_numbers(tmp_path):
    rows = _rows(tmp_path)
    for bad in ("1_0", "1.0", "٣", "0x1"):
        rows[2]["label"] = bad
        with pytest.raises(PMRFusionError, match=r"row 3, column 'label'.*not an integer"):
            load_manifest(_csv(tmp_path, rows))
    rows[2]["label"] = "+1"
    assert load_manifest(_csv(tmp_path, rows)).labels[2] == 1
    targets = [
        dict({k: v for k, v in r.items() if k != "label"}, target=str(i / 2)) for i, r in enumerate(rows)
    ]
    assert load_manifest(_csv(tmp_path, targets)).labels[3] == pytest.approx(1.5)
    for bad, match in (("1_0", "not a number"), ("nan", "not finite"), ("1e400", "not finite")):
        targets[2]["target"] = bad
        with pytest.raises(PMRFusionError, match=rf"row 3, column 'target'.*{match}"):
            load_manifest(_csv(tmp_path, targets))


def test_outside_paths_are_refused_unless_allowed(tmp_path, monkeypatch):
    data = tmp_path / "data"
    rows = _rows(data)
    np.save(tmp_path / "outer.npy", np.zeros(3, np.float32))
    os.symlink(tmp_path / "outer.npy", data / "link.npy")
    os.symlink(data / "v2.npy", data / "inner.npy")  # a link that stays inside is fine
    rows[1]["vec"], rows[2]["vec"], rows[3]["vec"] = "../outer.npy", str(tmp_path / "outer.npy"), "link.npy"
    rows[5]["vec"] = "inner.npy"
    path = _csv(data, rows)
    with pytest.raises(PMRFusionError, match=r"row 2, column 'vec': \.\./outer\.npy leads outside"):
        load_manifest(path)
    assert load_manifest(path, allow_outside=True).source.get(3, ["vec"])["vec"].tolist() == [0, 0, 0]
    monkeypatch.setenv("PMRFUSION_MANIFEST_ALLOW_OUTSIDE", "1")
    assert load_manifest(path).num_samples == 8
    with pytest.raises(PMRFusionError, match="leads outside"):
        load_manifest(path, allow_outside=False)


def test_first_bad_row_is_reported_whatever_the_thread_order(tmp_path):
    rows = _rows(tmp_path, n=40)
    for i in (31, 6, 17):
        np.save(tmp_path / f"v{i}.npy", np.full(3, np.nan, np.float32))
    with pytest.raises(PMRFusionError, match=r"row 7, column 'vec'"):
        load_manifest(_csv(tmp_path, rows))


def test_limits_are_named_constants(tmp_path, monkeypatch):
    rows = _rows(tmp_path)
    for i, r in enumerate(rows):
        wavfile.write(tmp_path / f"a{i}.wav", 8000, np.zeros(2000 + i, np.int16))
        r["aud"] = f"a{i}.wav"
    path = _csv(tmp_path, rows)
    with pytest.raises(PMRFusionError, match=r"column 'aud': 0.01 s at 8000 Hz is 80 samples.*256"):
        load_manifest(path, audio_seconds=0.01)
    monkeypatch.setattr(content, "MAX_AUDIO_FILE_SAMPLES", 2003)
    with pytest.raises(
        PMRFusionError, match=r"row 5, column 'aud': a4.wav: the recording holds 2,004 samples"
    ):
        load_manifest(path)
    monkeypatch.setattr(content, "MAX_ARRAY_ELEMENTS", 2)
    with pytest.raises(PMRFusionError, match=r"row 1, column 'vec'.*MAX_ARRAY_ELEMENTS"):
        load_manifest(path)  # a cached check is held to today's limits too


def test_checks_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    rows = _rows(tmp_path)
    path = _csv(tmp_path, rows)
    decoded: list[Path] = []
    for kind, (header, limits, check) in list(content.CHECKS.items()):

        def counted(file, info, check=check):
            decoded.append(file)
            return check(file, info)

        monkeypatch.setitem(content.CHECKS, kind, (header, limits, counted))
    load_manifest(path)
    assert len(decoded) == 16
    cache_files = list((tmp_path / "cache" / "manifest-checks").glob("*.json"))
    assert len(cache_files) == 1
    load_manifest(path)
    assert len(decoded) == 16  # this process remembers
    monkeypatch.setattr(content, "_MEMO", {})
    load_manifest(path)
    assert len(decoded) == 16  # the disk cache remembers
    np.save(tmp_path / "v3.npy", np.array([1, 2, np.nan], np.float32))  # new content, new mtime
    with pytest.raises(PMRFusionError, match=r"row 4, column 'vec': v3.npy: holds 1 NaN"):
        load_manifest(path)
    assert decoded[16:] == [(tmp_path / "v3.npy").resolve()]
    np.save(tmp_path / "v3.npy", np.zeros(3, np.float32))
    monkeypatch.setattr(content, "_MEMO", {})
    load_manifest(path, check_cache=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere").glob("*.json"))) == 1
    before = len(decoded)
    monkeypatch.setattr(content, "_MEMO", {})
    load_manifest(path, check_cache=False)  # this process only: every file again, nothing written
    assert len(decoded) == before + 16 and len(list((tmp_path / "cache").rglob("*.json"))) == 1
