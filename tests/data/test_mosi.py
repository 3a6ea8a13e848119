"""The built-in MOSI dataset (regression, speaker-independent split) and task detection."""

import numpy as np
import pytest
import torch

from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.mosi import read_transcripts
from pmrfusion.data.prepared import prepare
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import conditions
from pmrfusion.eval.subset_table import SUBSET_ORDER, subset_label


@pytest.fixture(scope="module")
def mosi(data_root):
    if not (data_root / "mosi").is_dir():
        pytest.skip("../shared/data/mosi not available")
    return load_dataset("mosi", data_root)


def test_mosi_is_regression_with_its_split(mosi):
    assert mosi.task == "regression" and mosi.num_classes == 1
    assert mosi.labels.dtype == np.float32 and mosi.labels.min() >= -3 and mosi.labels.max() <= 3
    assert mosi.dims == {"text": 100, "audio": 73, "video": 100}
    sizes = {k: len(v) for k, v in mosi.splits.items()}
    assert sizes == {"train": 1252, "val": 195, "test": 752}
    tr, va, te = (set(mosi.splits[s].tolist()) for s in ("train", "val", "test"))
    assert not (tr & va or tr & te or va & te)
    assert "regression" in mosi.summary()


def test_transcripts_align_with_rows(data_root, mosi):
    texts = read_transcripts(data_root / "mosi", mosi.num_samples)
    assert len(texts) == 2199 and texts[0] == "ANYHOW IT WAS REALLY GOOD"
    with pytest.raises(PMRFusionError, match="transcripts but"):
        read_transcripts(data_root / "mosi", 10)


def test_cmu_standard_split_warns(data_root):
    with pytest.warns(UserWarning, match="leakage"):
        d = load_dataset("mosi-cmu-standard", data_root)
    assert {k: len(v) for k, v in d.splits.items()} == {"train": 1284, "val": 229, "test": 686}
    assert any("leakage" in n for n in d.notes)


def test_seven_subsets_from_clean_and_missing(mosi):
    prepared = prepare(mosi, seed=0)
    assert prepared.val is not None and len(prepared.val) == 195  # the file's validation split is kept
    labels = [
        subset_label(c.present_modalities)
        for p in ("clean", "missing")
        for c in conditions(p, prepared.test, 0)
    ]
    assert sorted(labels) == sorted(SUBSET_ORDER)
    missing_text = next(
        c for c in conditions("missing", prepared.test, 0) if subset_label(c.present_modalities) == "a,v"
    )
    fill = prepared.test.absent_fill["text"]  # zero in original units
    torch.testing.assert_close(missing_text.features["text"], fill.expand_as(missing_text.features["text"]))


def _feats(n):
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(n, 3)), "b": rng.normal(size=(n, 2))}


def test_task_detection_and_override():
    splits = {"train": np.arange(8), "test": np.arange(8, 10)}
    floats = MultimodalData("r", _feats(10), np.linspace(-1, 1, 10), dict(splits))
    assert floats.task == "regression" and floats.num_classes == 1
    whole = MultimodalData("c", _feats(10), np.array([0.0, 1.0] * 5), dict(splits))
    assert whole.task == "classification" and whole.labels.dtype == np.int64 and whole.num_classes == 2
    forced = MultimodalData("f", _feats(10), np.array([0, 1] * 5), dict(splits), task="regression")
    assert forced.task == "regression" and forced.labels.dtype == np.float32
    with pytest.raises(PMRFusionError, match="labels must be integers"):
        MultimodalData("x", _feats(10), np.linspace(-1, 1, 10), dict(splits), task="classification")
    with pytest.raises(PMRFusionError, match="unknown task"):
        MultimodalData("x", _feats(10), np.zeros(10), dict(splits), task="ranking")
    v = floats.with_validation(0.25, seed=1)  # random (unstratified) validation cut for regression
    assert len(v.splits["val"]) == 2 and v.task == "regression"
    assert not set(v.splits["val"]) & set(v.splits["train"])
