"""Regression through the raw (encoder) path: float labels, L1 loss, regression metrics; mosi-text."""

import numpy as np
import pytest
import torch

from pmrfusion.bench.runner import evaluate, fit_method, prepare_seed
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.manifest import load_manifest
from pmrfusion.data.raw import ArraySource, RawMultimodalData, RawSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.regression_metrics import REGRESSION_METRICS
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.trainer import TrainConfig


def _toy(n=40, seed=0):
    """Two array modalities whose sum is the (float) target."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)
    y = a.sum(1) + b.sum(1)
    rows = np.arange(n)
    source = ArraySource({"a": a, "b": b}, {"a": rows, "b": rows})
    splits = {"train": rows[:30], "test": rows[30:]}
    return RawMultimodalData("toy", {"a": "array", "b": "array"}, {"a": (3,), "b": (2,)}, y, splits, source)


def test_float_labels_make_a_regression_raw_dataset_streamed_as_float32():
    data = _toy()
    assert data.task == "regression" and data.num_classes == 1 and data.labels.dtype == np.float32
    assert "regression" in data.summary()
    split = data.with_validation(0.2, 0).rows("train")
    split.loader_settings.num_workers = 0
    batch = next(split.batches(split.loader(8, shuffle_seed=0)))
    assert batch.labels.dtype == torch.float32 and split.labels.dtype == torch.float32
    assert torch.equal(batch.labels, torch.from_numpy(data.labels[batch.index.numpy()]))
    # integer labels stay a classification task with int64 labels
    ints = RawMultimodalData("c", data.kinds, data.shapes, np.arange(40) % 3, data.splits, data.source)
    assert ints.task == "classification" and ints.num_classes == 3 and ints.labels.dtype == np.int64


def test_one_epoch_on_raw_regression_data_gives_regression_metrics():
    cfg = EncoderConfig(widths={"a": 8, "b": 8})
    cfg.loader.num_workers = 0
    p = prepare_seed(_toy(), 0, 0.2, cfg)
    model, result = fit_method("concat", p, 0, {}, TrainConfig(epochs=2, batch_size=8), encoder=cfg)
    assert np.isfinite(result.best_val_mae) and "val_mae" in result.history[-1]
    recs = evaluate(model, p, ["clean", "missing"], 0, {})
    assert {r["metric"] for r in recs} == set(REGRESSION_METRICS)
    assert {r["condition"] for r in recs} == {"clean", "missing:a", "missing:b"}
    with pytest.raises(PMRFusionError, match="does not support regression"):
        from pmrfusion.bench.runner import RunSpec, run_grid

        run_grid(_toy(), RunSpec(methods=["qmf"], protocols=["clean"], seeds=[0]))


def test_regression_manifest(tmp_path):
    rows = ["a,b,label"]
    for i in range(12):
        np.save(tmp_path / f"v{i}.npy", np.full(2, i, np.float32))
        rows.append(f"v{i}.npy,word{i % 3} other,{0.5 * i - 2.25}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    data = load_manifest(tmp_path / "m.csv", task="regression")
    assert data.task == "regression" and data.labels[1] == pytest.approx(-1.75)
    assert "random 80/20" in data.notes[0]
    assert data.source.text(4, "b") == "word1 other"
    with pytest.raises(PMRFusionError, match="not an integer.*name the column 'target'"):
        load_manifest(tmp_path / "m.csv")  # a 'label' column holds integer classes


def test_a_target_column_makes_a_regression_manifest_on_the_cli(tmp_path, capsys):
    """`target` instead of `label`: regression with no option, through `pmrfusion bench` and `train`."""
    from pmrfusion.cli import main

    rows = ["a,b,target"]
    for i in range(24):
        np.save(tmp_path / f"v{i}.npy", np.full(2, i, np.float32))
        rows.append(f"v{i}.npy,word{i % 3} other,{0.5 * i - 2.25}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset(str(tmp_path / "m.csv"))
    assert data.task == "regression" and data.labels[1] == pytest.approx(-1.75)
    with pytest.raises(PMRFusionError, match="regression target, not classes"):
        load_manifest(tmp_path / "m.csv", task="classification")
    (tmp_path / "both.csv").write_text("a,b,label,target\nv0.npy,x,0,0.5\nv1.npy,y,1,1.5\n")
    with pytest.raises(PMRFusionError, match="both 'label' and 'target'"):
        load_manifest(tmp_path / "both.csv")
    import sys

    out = tmp_path / "out"
    argv = ["pmrfusion", "bench", "--dataset", str(tmp_path / "m.csv"), "--methods", "concat", "--seeds",
            "1", "--epochs", "1", "--protocols", "clean", "--quiet", "--out", str(out)]  # fmt: skip
    old, sys.argv = sys.argv, argv
    try:
        main()
    except SystemExit as e:
        assert e.code in (0, None), capsys.readouterr().err
    finally:
        sys.argv = old
    import csv

    with (out / "results.csv").open() as fh:
        assert {r["metric"] for r in csv.DictReader(fh)} == set(REGRESSION_METRICS)


def test_mosi_text_is_raw_mosi_with_its_split(mosi_text, data_root):
    mosi = load_dataset("mosi", data_root)
    assert mosi_text.task == "regression" and mosi_text.modalities == ["text", "audio", "video"]
    assert mosi_text.kinds == {"text": "text", "audio": "array", "video": "array"}
    assert mosi_text.encoder_defaults == {"text": "minilm"}
    assert all(np.array_equal(mosi_text.splits[s], mosi.splits[s]) for s in ("train", "val", "test"))
    assert np.array_equal(mosi_text.labels, mosi.labels)
    row = int(mosi.splits["test"][5])
    got = mosi_text.source.get(row, ["audio", "video", "text"])
    assert list(got) == ["audio", "video", "text"]
    assert torch.equal(got["audio"], torch.from_numpy(mosi.features["audio"][row]))
    assert mosi_text.source.text(0, "text") == "ANYHOW IT WAS REALLY GOOD"
    assert got["text"].shape == (256,)  # hashed bag of words until a token encoder asks for tokens


def test_mosi_text_with_bag_of_words_text_trains_without_the_extra(mosi_text):
    cfg = EncoderConfig(encoders={"text": "mlp"}, widths={"text": 16, "audio": 16, "video": 16})
    cfg.loader.num_workers = 0
    p = prepare_seed(mosi_text, 0, 0.15, cfg)
    assert p.data.kinds["text"] == "text" and len(p.val) == 195  # the file's validation split
    rng = np.random.default_rng(0)
    p.train, p.val, p.test = (
        RawSplit(s.data, np.sort(rng.permutation(s.rows)[:k]), None, cfg.loader)
        for s, k in ((p.train, 200), (p.val, 50), (p.test, 100))
    )
    model, _ = fit_method("late", p, 0, {}, TrainConfig(epochs=1, batch_size=32), encoder=cfg)
    m = {r["metric"]: r["value"] for r in evaluate(model, p, ["clean"], 0, {})}
    assert set(m) == set(REGRESSION_METRICS) and np.isfinite(m["mae"])
