"""Naturally missing modalities, labels as users have them, raw inputs as they come, Python entry points."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pmrfusion as pf
from pmrfusion.data.labels import decode_labels, encode_labels
from pmrfusion.data.loaders import load_npz
from pmrfusion.data.manifest import load_manifest
from pmrfusion.data.prepared import prepare
from pmrfusion.data.presence import presence_patterns
from pmrfusion.data.scaling import Standardizer
from pmrfusion.data.statistics import fit_stats
from pmrfusion.errors import PMRFusionError


def _feats(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(n, 3)), "b": rng.normal(size=(n, 2))}


def test_npz_nan_rows_and_present_arrays_mark_absent(tmp_path):
    f = _feats()
    f["a"][2] = np.nan
    present_b = np.ones(10, bool)
    present_b[5] = False
    y = np.array(["cat", "dog"] * 5)
    np.savez(tmp_path / "d.npz", x_a=f["a"], x_b=f["b"], present_b=present_b, y=y)
    d = load_npz(tmp_path / "d.npz")
    assert np.flatnonzero(~d.present["a"]).tolist() == [2]
    assert np.flatnonzero(~d.present["b"]).tolist() == [5]
    assert (d.features["a"][2] == 0).all() and (d.features["b"][5] == 0).all()  # stored as zeros
    assert d.classes == ["cat", "dog"] and d.labels.tolist() == [0, 1] * 5
    assert presence_patterns(d.present) == [(("a", "b"), 8), (("b",), 1), (("a",), 1)]
    assert "presence patterns: a+b 8, b 1, a 1" in d.summary()


def test_partly_nan_row_and_empty_row_are_errors_naming_the_row():
    f = _feats()
    f["a"][4, 1] = np.nan
    with pytest.raises(PMRFusionError, match="modality 'a' row 4 has NaN/inf"):
        pf.from_arrays(f, np.arange(10) % 2)
    f = _feats()
    f["a"][6] = np.nan
    f["b"][6] = np.nan
    with pytest.raises(PMRFusionError, match="row 6 has no modality present"):
        pf.from_arrays(f, np.arange(10) % 2)


def test_fully_present_data_has_no_presence():
    d = pf.from_arrays(_feats(), np.arange(10) % 2, present={"a": np.ones(10, bool)})
    assert d.present is None and "presence" not in d.summary()
    assert presence_patterns(None, ["a", "b"], 10) == [(("a", "b"), 10)]


def test_scaling_statistics_come_from_present_rows_only():
    x = np.array([[1.0], [3.0], [100.0], [5.0]])
    feats = {"a": x, "b": np.ones((4, 1))}
    present = {"a": np.array([True, True, False, True]), "b": np.ones(4, bool)}
    s = Standardizer.fit(feats, np.arange(4), present)
    assert s.mean["a"][0] == pytest.approx(3.0)  # (1 + 3 + 5) / 3
    assert s.scale["a"][0] == pytest.approx(np.sqrt(8 / 3))  # population std of 1, 3, 5
    d = pf.from_arrays(
        {"a": np.array([1.0, 3, np.nan, 5, 7]), "b": np.arange(5.0)},
        [0, 1, 0, 1, 0],
        splits={"train": np.arange(4), "test": np.array([4])},
    )
    p = prepare(d, val_fraction=0.0)
    assert p.scaler.mean["a"][0] == pytest.approx(3.0)
    assert p.train.present[:, 0].tolist() == [True, True, False, True]
    # the absent cell holds the scaled original-unit zero, the papers' absent fill
    assert p.train.features["a"][2, 0].item() == pytest.approx(p.train.absent_fill["a"][0].item())
    batch = p.train.batch(torch.arange(4), torch.tensor([[True, False]] * 4))
    assert batch.present.tolist() == [[True, False], [True, False], [False, False], [True, False]]


def test_labels_round_trip():
    idx, classes = encode_labels("t", np.array(["b", "a", "c", "a"]))
    assert classes == ["a", "b", "c"] and idx.tolist() == [1, 0, 2, 0]
    assert decode_labels(classes, idx).tolist() == ["b", "a", "c", "a"]
    idx, classes = encode_labels("t", np.array([7, -3, 7, 9]))
    assert classes == ["-3", "7", "9"] and decode_labels(classes, idx).tolist() == ["7", "-3", "7", "9"]
    assert encode_labels("t", np.array([0, 1, 1]))[1] is None
    assert decode_labels(None, [1, 0]).tolist() == [1, 0]


def _png(path, size, mode="RGB", value=100):
    Image.new(mode, size, value if mode == "L" else (value, 0, 0)).save(path)
    return path.name


def _manifest(tmp_path, lines):
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "m.csv"


def test_manifest_empty_cells_present_column_word_labels_numeric_inline(tmp_path):
    for i in range(6):
        _png(tmp_path / f"i{i}.png", (8, 8))
    rows = ["image,vec,present_vec,label,split"]
    for i in range(6):
        image = "" if i == 1 else f"i{i}.png"
        vec = "" if i == 2 else f"{i} {i + 1} {i + 2}"
        flag = "false" if i == 3 else "true"
        rows.append(f"{image},{vec},{flag},{['cat', 'dog'][i % 2]},{'test' if i >= 4 else 'train'}")
    d = load_manifest(_manifest(tmp_path, rows))
    assert d.kinds == {"image": "image", "vec": "array"} and d.shapes["vec"] == (3,)
    assert np.flatnonzero(~d.present["image"]).tolist() == [1]
    assert np.flatnonzero(~d.present["vec"]).tolist() == [2, 3]
    assert d.classes == ["cat", "dog"]
    assert d.source.get(4, ["vec"])["vec"].tolist() == [4.0, 5.0, 6.0]
    assert (d.source.get(1, ["image"])["image"] == 0).all()  # an absent image decodes to zeros
    split = d.rows("train")
    split.loader_settings.num_workers = 0
    batch = next(split.batches(split.loader(4)))
    assert batch.present.tolist() == [[True, True], [False, True], [True, False], [True, False]]
    stats = fit_stats(split)
    assert stats["vec"].mean.tolist() == pytest.approx([0.5, 1.5, 2.5])  # rows 0 and 1 only
    forced = load_manifest(_manifest(tmp_path, rows), column_kinds={"vec": "text"})
    assert forced.kinds["vec"] == "text"


def test_manifest_without_labels_loads_but_does_not_train(tmp_path):
    for i in range(4):
        _png(tmp_path / f"i{i}.png", (8, 8))
    d = load_manifest(_manifest(tmp_path, ["image,vec"] + [f"i{i}.png,{i} 1" for i in range(4)]))
    assert d.labels is None and d.splits["test"].tolist() == [0, 1, 2, 3] and "unlabelled" in d.summary()
    with pytest.raises(PMRFusionError, match="has no labels"):
        pf.run_grid(d, pf.RunSpec(methods=["concat"], seeds=[0]))


def test_mixed_image_sizes_need_image_size_then_resize(tmp_path):
    names = [
        _png(tmp_path / "a.png", (8, 8)),
        _png(tmp_path / "b.png", (12, 6), "RGBA"),
        _png(tmp_path / "c.png", (10, 10), "L", 7),
        _png(tmp_path / "d.png", (8, 8)),
    ]
    rows = ["image,vec,label"] + [f"{n},{i} 0,{i % 2}" for i, n in enumerate(names)]
    with pytest.raises(PMRFusionError, match=r"row 2, column 'image'.*set image_size"):
        load_manifest(_manifest(tmp_path, rows))
    d = load_manifest(_manifest(tmp_path, rows), image_size=(6, 4))
    assert d.shapes["image"] == (3, 4, 6)
    assert tuple(d.source.get(1, ["image"])["image"].shape) == (3, 4, 6)  # RGBA -> RGB, resized
    assert d.source.get(2, ["image"])["image"][:, 0, 0].tolist() == [7, 7, 7]  # grey -> RGB


def test_flac_audio_loads_through_soundfile(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    t = np.arange(800) / 800
    for i in range(4):
        soundfile.write(tmp_path / f"s{i}.flac", (0.5 * np.sin(2 * np.pi * 50 * t * (i + 1))), 800)
    rows = ["sound,vec,label"] + [f"s{i}.flac,{i} 1,{i % 2}" for i in range(4)]
    d = load_manifest(_manifest(tmp_path, rows))
    assert d.kinds["sound"] == "audio" and d.sample_rates["sound"] == 800 and d.shapes["sound"] == (800,)
    wave = d.source.get(0, ["sound"])["sound"].numpy()
    assert np.abs(wave - 0.5 * np.sin(2 * np.pi * 50 * t)).max() < 1e-3


def test_from_dataframe_and_torch_dataset_match_from_arrays():
    pd = pytest.importorskip("pandas")
    f = _feats(8)
    f["a"][1] = np.nan
    labels = np.array(["x", "y"] * 4)
    ref = pf.from_arrays(f, labels, splits={"train": np.arange(6), "test": np.arange(6, 8)})
    df = pd.DataFrame(
        {"a": list(f["a"]), "b": list(f["b"]), "label": labels, "split": ["train"] * 6 + ["test"] * 2}
    )
    from_df = pf.from_dataframe(df)
    items = [
        {"a": torch.tensor(f["a"][i]), "b": torch.tensor(f["b"][i]), "label": labels[i]} for i in range(8)
    ]
    from_torch = pf.from_torch_dataset(items, splits={"train": np.arange(6), "test": np.arange(6, 8)})
    for d in (from_df, from_torch):
        assert d.classes == ["x", "y"] and np.array_equal(d.labels, ref.labels)
        assert np.array_equal(d.present["a"], ref.present["a"]) and d.present["a"].tolist()[:2] == [
            True,
            False,
        ]
        assert all(np.array_equal(d.features[m], ref.features[m]) for m in f)
        assert d.splits["test"].tolist() == [6, 7]


def test_from_dataframe_of_paths_is_a_manifest(tmp_path):
    pd = pytest.importorskip("pandas")
    names = [_png(tmp_path / f"i{i}.png", (8, 8)) for i in range(4)]
    df = pd.DataFrame({"image": names[:3] + [None], "note": ["a b", "c", "d e", "f"], "label": [1, 5, 1, 5]})
    d = pf.from_dataframe(df, root=tmp_path)
    assert d.kinds == {"image": "image", "note": "text"} and d.present["image"].tolist() == [1, 1, 1, 0]
    assert d.classes == ["1", "5"]


def test_jsonl_present_flags_accept_booleans_numbers_and_strings(tmp_path):
    import json

    for i in range(6):
        _png(tmp_path / f"i{i}.png", (8, 8))
    flags = [True, False, 1, 0, "TRUE", "False"]
    rows = [
        {"image": f"i{i}.png", "vec": f"{i} 1", "present_vec": flag, "label": "ab"[i % 2]}
        for i, flag in enumerate(flags)
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    d = load_manifest(path)
    assert d.present["vec"].tolist() == [True, False, True, False, True, False]
    assert d.present["image"].all()
    for bad in (2, "maybe", 1.5):
        rows[4]["present_vec"] = bad
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(PMRFusionError, match="row 5, column 'present_vec'"):
            load_manifest(path)
    rows[4]["present_vec"], rows[4]["vec"] = True, True  # a boolean is a flag, never a modality cell
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(PMRFusionError, match="row 5, column 'vec': a JSON boolean"):
        load_manifest(path)


def test_from_dataframe_mixes_array_and_path_columns(tmp_path):
    pd = pytest.importorskip("pandas")
    names = [_png(tmp_path / f"i{i}.png", (8, 8), value=10 * i) for i in range(4)]
    vecs = [np.array([0.1, -2.5e-7, 3.0], np.float32) + i for i in range(4)]
    vecs[2] = np.full(3, np.nan, np.float32)  # all-NaN: absent
    df = pd.DataFrame({"image": names[:3] + [None], "vec": vecs, "label": ["x", "y", "x", "y"]})
    d = pf.from_dataframe(df, root=tmp_path)
    assert d.kinds == {"image": "image", "vec": "array"} and d.shapes["vec"] == (3,)
    assert d.present["image"].tolist() == [1, 1, 1, 0] and d.present["vec"].tolist() == [1, 1, 0, 1]
    assert d.classes == ["x", "y"]
    for i in (0, 1, 3):
        assert np.array_equal(d.source.get(i, ["vec"])["vec"].numpy(), vecs[i])  # exact float32 round trip
    assert int(d.source.get(1, ["image"])["image"].max()) > 0
    vecs[1] = np.array([1.0, np.nan, 2.0], np.float32)
    with pytest.raises(PMRFusionError, match="row 2, column 'vec': NaN/inf"):
        pf.from_dataframe(df.assign(vec=vecs), root=tmp_path)
