"""Raw-data checkpoints: encoders + method saved and rebuilt exactly; metadata checked first."""

import dataclasses

import pytest
import torch

from pmrfusion.bench.runner import fit_method
from pmrfusion.data.loaders import default_data_root, load_dataset
from pmrfusion.errors import PMRFusionError
from pmrfusion.modules.composition import encoder_names
from pmrfusion.train.checkpoint import (
    check_raw_data_matches,
    is_raw_checkpoint,
    load_raw_checkpoint,
    save_raw_checkpoint,
)
from pmrfusion.train.trainer import TrainConfig, predict
from tests.train.test_end_to_end import _small


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = default_data_root()
    if root is None or not (root / "avmnist").is_dir():
        pytest.skip("../shared/data/avmnist not available")
    data = load_dataset("avmnist")
    prepared, cfg = _small(data, train_rows=300, test_rows=200)
    tc = TrainConfig(epochs=1, batch_size=64, quiet=True)
    model, _ = fit_method("rg-concat", prepared, 0, {"n": 2}, tc, encoder=cfg)
    path = tmp_path_factory.mktemp("ckpt") / "rg.pt"
    names = encoder_names(prepared.data, cfg.encoders)
    save_raw_checkpoint(path, model, "rg-concat", {"n": 2}, prepared.data, names, cfg.widths, cfg.frontend,
                        prepared.stats, "avmnist", cfg.max_length)  # fmt: skip
    return data, prepared, model, path


def test_reloaded_model_predicts_exactly_as_the_trained_one(trained):
    data, prepared, model, path = trained
    assert is_raw_checkpoint(path)
    loaded, meta, _, stats = load_raw_checkpoint(path, data)
    feats = prepared.test_inputs()
    present = torch.ones(len(prepared.test), 2, dtype=torch.bool)
    model.eval()
    assert torch.equal(predict(model, feats, present), predict(loaded, feats, present))
    assert meta["method"] == "rg-concat" and meta["config"]["n"] == 2
    assert stats["image"].high == prepared.stats["image"].high  # noise protocols scale by these


def test_data_that_does_not_match_the_checkpoint_is_refused(trained):
    data, _, _, path = trained
    meta = torch.load(path, weights_only=True)
    with pytest.raises(PMRFusionError, match="10 classes but the checkpoint was trained on 5 classes"):
        check_raw_data_matches({**meta, "num_classes": 5}, data)
    other = dataclasses.replace(data, shapes={**data.shapes, "audio": (4000,)})
    with pytest.raises(PMRFusionError, match="modality 'audio' has shape"):
        check_raw_data_matches(meta, other)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p["modalities"]["image"].update(width=-1), "bad width"),
        (lambda p: p["modalities"]["audio"].update(encoder="resnet"), "unknown kind or encoder"),
        (lambda p: p.update(num_classes=10**9), "num_classes"),
        (lambda p: p["modalities"]["image"]["stats"].update(mean=torch.tensor(float("nan"))), "finite"),
        (lambda p: p.pop("state_dict"), "missing state_dict"),
        (lambda p: p.update(max_length=2**40), "max_length must be an integer in 1..8192"),
    ],
)
def test_bad_metadata_is_refused_before_building(trained, tmp_path, edit, message):
    data, _, _, path = trained
    payload = torch.load(path, weights_only=True)
    edit(payload)
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(PMRFusionError, match=message):
        load_raw_checkpoint(bad, data)
