import numpy as np
import pytest
import scipy.io as sio

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.data.scaling import Standardizer
from pmrfusion.errors import PMRFusionError


def test_embedded_handwritten():
    d = load_dataset("handwritten")
    assert d.dims == {"pixel": 240, "fourier": 76, "profile": 216, "zernike": 47, "karhunen": 64, "morph": 6}
    assert d.num_samples == 2000 and d.num_classes == 10
    assert len(d.split("train")) == 1600 and len(d.split("test")) == 400
    assert not set(d.split("train")) & set(d.split("test"))
    assert np.bincount(d.labels).tolist() == [200] * 10


def test_real_files(data_root):
    cub = load_dataset("cub", data_root)
    assert cub.dims == {"img": 1024, "txt": 300} and cub.num_classes == 10
    assert (len(cub.split("train")), len(cub.split("test"))) == (480, 120)
    assert any("1-based" in n for n in cub.notes)
    pie = load_dataset("pie", data_root)
    assert pie.dims == {"intensity": 484, "lbp": 256, "gabor": 279} and pie.num_classes == 68
    assert sum("transposed" in n for n in pie.notes) == 3
    wiki = load_dataset("wikipedia", data_root)
    assert wiki.dims == {"img": 128, "txt": 10}
    assert (len(wiki.split("train")), len(wiki.split("test"))) == (2173, 693)
    np.testing.assert_allclose(wiki.features["txt"].sum(1), 1.0, atol=1e-4)
    tmc = load_dataset("handwritten-tmc", data_root)
    assert (len(tmc.split("train")), len(tmc.split("test"))) == (1600, 400)
    assert np.bincount(tmc.labels[tmc.split("test")]).tolist() == [40] * 10  # TMC: 40 per class
    assert len(set(tmc.split("test")) & set(load_dataset("handwritten").split("test"))) < 100


def test_npz_roundtrip_and_default_split(tmp_path):
    rng = np.random.default_rng(0)
    x = {"x_a": rng.normal(size=(50, 3)), "x_b": rng.normal(size=(50, 7))}
    y = np.repeat(np.arange(5), 10)
    np.savez(tmp_path / "with.npz", **x, y=y, train_idx=np.arange(40), test_idx=np.arange(40, 50))
    d = load_dataset(tmp_path / "with.npz")
    assert d.dims == {"a": 3, "b": 7} and len(d.split("test")) == 10
    np.savez(tmp_path / "nosplit.npz", **x, y=y)
    d2 = load_dataset(tmp_path / "nosplit.npz")
    assert len(d2.split("test")) == 10 and np.bincount(d2.labels[d2.split("test")]).tolist() == [2] * 5
    assert d2.notes and "stratified" in d2.notes[0]


def test_mat_orientation_and_label_base(tmp_path):
    rng = np.random.default_rng(0)
    views = np.empty((1, 2), dtype=object)
    views[0, 0] = rng.normal(size=(4, 30))  # stored (d, n)
    views[0, 1] = rng.normal(size=(30, 6))  # stored (n, d)
    sio.savemat(tmp_path / "mv.mat", {"X": views, "Y": np.repeat(np.arange(1, 4), 10)[:, None]})
    d = load_dataset(tmp_path / "mv.mat")
    assert d.dims == {"view0": 4, "view1": 6}
    assert d.labels.min() == 0 and d.num_classes == 3
    assert any("transposed" in n for n in d.notes) and any("1-based" in n for n in d.notes)


def test_scaler_uses_training_rows_only():
    d = load_dataset("handwritten")
    tr = d.split("train")
    s1 = Standardizer.fit(d.features, tr)
    feats = {m: x.copy() for m, x in d.features.items()}
    feats["pixel"][d.split("test")] += 1000.0
    s2 = Standardizer.fit(feats, tr)
    np.testing.assert_array_equal(s1.mean["pixel"], s2.mean["pixel"])
    p = prepare(d, 0.15, 0)
    np.testing.assert_allclose(p.train.features["fourier"].mean(0).numpy(), 0.0, atol=0.2)


def test_validation_split_is_seeded_and_disjoint():
    d = load_dataset("handwritten")
    a, b, c = d.with_validation(0.15, 1), d.with_validation(0.15, 1), d.with_validation(0.15, 2)
    np.testing.assert_array_equal(a.split("val"), b.split("val"))
    assert not np.array_equal(a.split("val"), c.split("val"))
    assert not set(a.split("val")) & set(a.split("train"))
    assert set(a.split("val")) | set(a.split("train")) == set(d.split("train"))
    np.testing.assert_array_equal(a.split("test"), d.split("test"))
    per_class_train = np.bincount(d.labels[d.split("train")])
    per_class_val = np.bincount(d.labels[a.split("val")])
    assert np.all(np.abs(per_class_val - 0.15 * per_class_train) <= 0.5)


def _data(**over):
    kw = dict(
        name="t",
        features={"a": np.zeros((4, 2)), "b": np.ones((4, 3))},
        labels=np.array([0, 1, 0, 1]),
        splits={"train": np.arange(3), "test": np.arange(3, 4)},
    )
    kw.update(over)
    return MultimodalData(**kw)


@pytest.mark.parametrize(
    "over, message",
    [
        ({"features": {"a": np.array([[np.nan, 0]] * 4), "b": np.ones((4, 3))}}, "NaN/inf"),
        ({"features": {"a": np.zeros((3, 2)), "b": np.ones((4, 3))}}, "has 3 rows"),
        ({"labels": np.array([0, 1, 0, 5]), "num_classes": 2}, "labels out of range"),
        ({"labels": np.array([0, -1, 0, 1]), "num_classes": 2}, "labels out of range"),
        ({"features": {"a": np.zeros((4, 0)), "b": np.ones((4, 3))}}, "dimension 0"),
        ({"features": {"a": np.zeros((4, 2))}}, "at least 2 modalities"),
        ({"splits": {"train": np.array([0, 9]), "test": np.array([1])}}, "outside"),
    ],
)
def test_invalid_data_is_rejected(over, message):
    with pytest.raises(PMRFusionError, match=message):
        _data(**over)


def test_missing_and_unknown(tmp_path):
    with pytest.raises(PMRFusionError, match="not found"):
        load_dataset(tmp_path / "nope.npz")
    with pytest.raises(PMRFusionError, match="unknown dataset"):
        load_dataset("nope")
    np.savez(tmp_path / "noy.npz", x_a=np.zeros((3, 2)), x_b=np.zeros((3, 2)))
    unlabelled = load_dataset(tmp_path / "noy.npz")  # loads for prediction only
    assert unlabelled.labels is None and "no 'y'" in unlabelled.notes[0]
    with pytest.raises(PMRFusionError, match="has no labels"):
        unlabelled.with_validation(0.2, 0)
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(PMRFusionError, match="cannot read"):
        load_dataset(tmp_path / "bad.npz")
