"""Manifest datasets: parsing, lazy decoding through a DataLoader, the cache, every error case."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import wavfile

from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.manifest import load_manifest
from pmrfusion.data.raw import RawMultimodalData
from pmrfusion.errors import PMRFusionError


def _write(folder, n=20, rate=8000, size=(12, 10), split=True):
    """n rows: grey PNG (size W x H) whose brightness encodes the label, a wav, a .npy, inline text."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = i % 2
        Image.fromarray(np.full(size[::-1], 40 + 150 * label, np.uint8)).save(folder / f"im{i}.png")
        wave = (rng.normal(0, 0.1, rate // 2 + i) * 32767).astype(np.int16)
        wavfile.write(folder / f"a{i}.wav", rate, wave)
        np.save(folder / f"v{i}.npy", rng.normal(size=3).astype(np.float32))
        row = {"image": f"im{i}.png", "audio": f"a{i}.wav", "vec": f"v{i}.npy", "txt": f"word{label} other",
               "label": str(label)}  # fmt: skip
        if split:
            row["split"] = "test" if i % 5 == 0 else "train"
        rows.append(row)
    return rows


def _csv(folder, rows, name="m.csv"):
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(r[c] for c in cols) for r in rows]
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder / name


def test_csv_and_jsonl_manifests_decode_lazily_through_a_dataloader(tmp_path):
    rows = _write(tmp_path)
    data = load_dataset(str(_csv(tmp_path, rows)))
    assert isinstance(data, RawMultimodalData)
    assert data.kinds == {"image": "image", "audio": "audio", "vec": "array", "txt": "text"}
    assert data.shapes["image"] == (1, 10, 12) and data.shapes["audio"] == (8000,)
    assert len(data.split("test")) == 4 and len(data.split("train")) == 16
    split = data.rows("train")
    split.loader_settings.num_workers = 2
    batches = list(split.batches(split.loader(8, shuffle_seed=0)))
    b = batches[0]
    assert b.features["image"].dtype == torch.uint8 and b.features["image"].shape == (8, 1, 10, 12)
    assert b.features["audio"].shape == (8, 8000)
    # the pixel value encodes the label: decoding matched every row to its own file
    for batch in batches:
        assert torch.equal((batch.features["image"][:, 0, 0, 0] > 100).long(), batch.labels)
    # audio: int16 scaled to [-1, 1], the (shorter) recording zero-padded at the end
    one = data.source.get(3, ["audio"])["audio"]
    _, raw = wavfile.read(tmp_path / "a3.wav")
    assert torch.allclose(one[: len(raw)], torch.from_numpy(raw / 32768.0).float())
    assert float(one[len(raw) :].abs().max()) == 0.0
    # the same rows as .jsonl give the same data
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    other = load_dataset(str(tmp_path / "m.jsonl"))
    assert np.array_equal(other.labels, data.labels) and other.kinds == data.kinds


def test_no_split_column_gives_a_seeded_stratified_split(tmp_path):
    rows = _write(tmp_path, split=False)
    a = load_manifest(_csv(tmp_path, rows), split_seed=1)
    b = load_manifest(_csv(tmp_path, rows), split_seed=1)
    assert np.array_equal(a.split("test"), b.split("test"))
    assert np.bincount(a.labels[a.split("test")]).tolist() == [2, 2]
    assert any("stratified" in n for n in a.notes)


def test_other_sample_rates_are_resampled_or_rejected(tmp_path):
    rows = _write(tmp_path)
    wave = (np.sin(np.arange(16000) / 5) * 10000).astype(np.int16)
    wavfile.write(tmp_path / "a0.wav", 16000, wave)  # 1 s at 16 kHz among 8 kHz files
    data = load_manifest(_csv(tmp_path, rows))
    x = data.source.get(0, ["audio"])["audio"]
    assert x.shape == (8000,) and float(x[:7000].abs().mean()) > 0.05  # 1 s of signal after resampling
    assert any("resampled" in n for n in data.notes)
    with pytest.raises(PMRFusionError, match=r"row 1, column 'audio'.*16000 Hz"):
        load_manifest(_csv(tmp_path, rows), resample=False)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda rows, d: rows[3].update(image="nope.png"), r"row 4, column 'image': file not found"),
        (lambda rows, d: (d / "im2.png").write_bytes(b"not a png"), r"row 3, column 'image': cannot read"),
        (lambda rows, d: (d / "a5.wav").write_bytes(b"RIFF...."), r"row 6, column 'audio': cannot read"),
        (lambda rows, d: Image.new("L", (9, 9)).save(d / "im7.png"), r"row 8, column 'image': image .* 9x9"),
        (lambda rows, d: rows[4].update(label="2.5"), r"row 5, column 'label'.*not an integer"),
        (lambda rows, d: rows[4].update(label="cat"), r"row 5, column 'label'.*not an integer"),
        (lambda rows, d: rows[1].update(split="dev"), r"row 2, column 'split'"),
        (lambda rows, d: rows[2].update(vec="v9.wav"), r"row 3, column 'vec': a audio value in a array"),
        (lambda rows, d: np.save(d / "v6.npy", np.zeros(4)), r"row 7, column 'vec': array of shape"),
    ],
)
def test_every_bad_row_is_one_clear_error_before_training(tmp_path, edit, match):
    rows = _write(tmp_path, n=10)
    edit(rows, tmp_path)
    with pytest.raises(PMRFusionError, match=match):
        load_dataset(str(_csv(tmp_path, rows)))


def test_manifest_level_errors(tmp_path):
    rows = _write(tmp_path, n=4)
    for r in rows:
        r.pop("label")
    unlabelled = load_manifest(_csv(tmp_path, rows))  # loads for prediction only
    assert unlabelled.labels is None and list(unlabelled.splits) == ["test"]
    (tmp_path / "one.csv").write_text("image,label\nim0.png,0\n")
    with pytest.raises(PMRFusionError, match="at least 2 modality columns"):
        load_manifest(tmp_path / "one.csv")
    with pytest.raises(PMRFusionError, match="manifest not found"):
        load_manifest(tmp_path / "absent.csv")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(PMRFusionError, match="line 2 is not valid JSON"):
        load_manifest(tmp_path / "bad.jsonl")


def test_on_disk_cache_serves_decoded_arrays(tmp_path):
    rows = _write(tmp_path, n=6)
    cache = tmp_path / "cache"
    data = load_manifest(_csv(tmp_path, rows), cache_dir=cache)
    first = data.source.get(2, ["image", "audio"])
    assert len(list(cache.glob("*.npy"))) == 2
    (tmp_path / "im2.png").unlink()  # now only the cache can serve row 3's image
    again = data.source.get(2, ["image", "audio"])
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["audio"], again["audio"])
