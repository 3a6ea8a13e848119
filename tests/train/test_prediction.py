"""`predict_checkpoint`: every sample of a dataset scored by a saved model of either format, in the
user's labels, with probabilities, presence, the method's uncertainty; checkpoints name their data
relative to themselves."""

import numpy as np
import pytest
import torch
from PIL import Image

from pmrfusion import predict_checkpoint
from pmrfusion.bench.runner import fit_method, prepare_seed
from pmrfusion.bench.single_run import train_once
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.loaders import load_dataset
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.checkpoint import load_checkpoint, resolve_dataset, save_checkpoint
from pmrfusion.train.prediction import write_predictions
from pmrfusion.train.trainer import TrainConfig, predict

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def feature_model(tmp_path_factory):
    data = load_dataset("handwritten")
    prepared = prepare_seed(data, 0)
    model, _ = fit_method("tmc", prepared, 0, {}, TrainConfig(epochs=1, batch_size=128, quiet=True))
    path = tmp_path_factory.mktemp("ckpt") / "tmc.pt"
    save_checkpoint(path, model, "tmc", {}, prepared.dims, 10, prepared.scaler, "handwritten", WORDS)
    return data, prepared, model, path


def test_feature_checkpoint_predicts_every_sample_in_the_users_labels(feature_model):
    data, prepared, model, path = feature_model
    preds = predict_checkpoint(path, data)
    assert len(preds) == data.num_samples and preds.ids[:3] == ["0", "1", "2"]
    assert preds.classes == WORDS and load_checkpoint(path)[1]["classes"] == WORDS
    # the same logits as the model on the test rows, scaled as in training
    test = data.split("test")
    logits = predict(model, prepared.test.features)
    assert np.allclose(preds.probabilities[test], torch.softmax(logits, 1).numpy(), atol=1e-6)
    assert [preds.prediction[i] for i in test[:20]] == [WORDS[k] for k in logits.argmax(1)[:20].tolist()]
    assert np.allclose(preds.probabilities.sum(1), 1.0, atol=1e-5)
    # an evidential method's uncertainty u = K / S and its per-view weights come along
    assert preds.uncertainty is not None and ((preds.uncertainty > 0) & (preds.uncertainty <= 1)).all()
    assert list(preds.weights) == data.modalities and preds.present.all()
    header = preds.columns()
    assert header[:3] == ["id", "prediction", "prob:zero"] and "uncertainty" in header


def test_a_presence_mask_feeds_absent_modalities_as_absent(feature_model):
    data, _, model, path = feature_model
    present = {m: np.ones(data.num_samples, bool) for m in data.modalities}
    present["pixel"][:5] = False
    masked = MultimodalData(data.name, data.features, data.labels, data.splits)
    masked.present = present  # the dataset's presence mask (data.present), as loaders give it
    preds = predict_checkpoint(path, masked)
    assert preds.present[:5, 0].sum() == 0 and preds.present[5:].all()
    row = next(iter(preds.rows()))
    assert row["present"] == "fourier+profile+zernike+karhunen+morph"
    full = predict_checkpoint(path, data)
    assert np.allclose(preds.probabilities[5:], full.probabilities[5:])
    assert not np.allclose(preds.probabilities[:5], full.probabilities[:5])


def test_predictions_are_written_once_unless_overwritten(feature_model, tmp_path):
    _, _, _, path = feature_model
    preds = predict_checkpoint(path)  # the dataset the checkpoint names
    out = write_predictions(preds, tmp_path / "p.csv")
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + len(preds) and lines[0].startswith("id,prediction,prob:zero,prob:one")
    assert lines[1].split(",")[1] == preds.prediction[0]
    with pytest.raises(Exception, match="already exists"):
        write_predictions(preds, out)
    write_predictions(preds, out, overwrite=True)


def test_old_checkpoints_without_classes_predict_class_indices(feature_model, tmp_path):
    data, _, _, path = feature_model
    payload = torch.load(path, weights_only=True)
    del payload["classes"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    preds = predict_checkpoint(old, data)
    assert preds.classes == [str(k) for k in range(10)] and isinstance(preds.prediction[0], int)


def test_dataset_paths_resolve_beside_the_checkpoint_then_as_stored(tmp_path, monkeypatch):
    (tmp_path / "ck").mkdir()
    (tmp_path / "d.npz").write_bytes(b"")
    ck = tmp_path / "ck" / "m.pt"
    assert resolve_dataset("../d.npz", ck) == str(tmp_path / "ck" / ".." / "d.npz")
    assert resolve_dataset("handwritten", ck) == "handwritten"
    monkeypatch.chdir(tmp_path)
    assert resolve_dataset("d.npz", ck) == "d.npz"  # an older checkpoint: relative to where it was trained


def _image_manifest(folder, n=24):
    """n rows: a grey PNG whose brightness encodes the word label, a .npy vector, an id column."""
    rng = np.random.default_rng(0)
    lines = ["id,image,vec,label,split"]
    for i in range(n):
        label = i % 2
        Image.fromarray(np.full((8, 8), 40 + 150 * label, np.uint8)).save(folder / f"im{i}.png")
        np.save(folder / f"v{i}.npy", rng.normal(size=3).astype(np.float32))
        lines.append(f"s{i},im{i}.png,v{i}.npy,{label},{'test' if i % 4 == 0 else 'train'}")
    (folder / "m.csv").write_text("\n".join(lines) + "\n")
    return folder / "m.csv"


def test_raw_checkpoint_predicts_with_the_manifest_ids(tmp_path):
    manifest = _image_manifest(tmp_path)
    data = load_dataset(manifest)
    data.classes = ["dark", "bright"]  # the labels of classes 0, 1, as a loader of word labels gives
    cfg = EncoderConfig()
    cfg.loader.num_workers = 0
    ck = tmp_path / "models" / "raw.pt"
    train_once(data, "late", 0, {}, TrainConfig(epochs=1, batch_size=8, quiet=True), cfg, ck, str(manifest))
    assert torch.load(ck, weights_only=True)["dataset"] == "../m.csv"  # relative to the checkpoint
    preds = predict_checkpoint(ck)
    assert preds.ids == [f"s{i}" for i in range(24)] and preds.modalities == ["image", "vec"]
    assert preds.probabilities.shape == (24, 2) and set(preds.prediction) <= {"dark", "bright"}
    assert preds.columns()[:4] == ["id", "prediction", "prob:dark", "prob:bright"]
    assert preds.uncertainty is None and preds.present.all()


def test_a_regression_model_predicts_values(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] + 0.25).astype(np.float32)
    splits = {"train": np.arange(30), "test": np.arange(30, 40)}
    data = MultimodalData("reg", {"a": x, "b": x[:, :2]}, y, splits, task="regression")
    prepared = prepare_seed(data, 0)
    model, _ = fit_method("concat", prepared, 0, {}, TrainConfig(epochs=1, batch_size=16, quiet=True))
    path = tmp_path / "reg.pt"
    save_checkpoint(path, model, "concat", {}, prepared.dims, 1, prepared.scaler, "reg")
    preds = predict_checkpoint(path, data)
    assert preds.probabilities is None and preds.columns() == ["id", "prediction", "present"]
    expected = predict(model, prepared.test.features).reshape(-1)
    assert np.allclose([preds.prediction[i] for i in range(30, 40)], expected.numpy(), atol=1e-6)
