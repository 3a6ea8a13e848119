"""Encoder analyses of raw-input models (probes, gradient cosine at V_m) and the encoder speed command."""

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pmrfusion.analysis.encoder_analyses import (
    encoder_gradient_cosine,
    encoder_outputs,
    encoder_probes,
    probe_accuracy,
)
from pmrfusion.bench.runner import prepare_seed
from pmrfusion.data.loaders import default_data_root, load_dataset
from pmrfusion.errors import PMRFusionError
from pmrfusion.modules.composition import EncoderConfig
from pmrfusion.train.regimes import build_encoders
from pmrfusion.train.trainer import TrainConfig


@pytest.fixture(scope="module")
def small_manifest(tmp_path_factory):
    root = default_data_root()
    if root is None or not (root / "avmnist").is_dir():
        pytest.skip("../shared/data/avmnist not available")
    from pmrfusion.data.avmnist import export_manifest

    folder = tmp_path_factory.mktemp("enc")
    return load_dataset(export_manifest(load_dataset("avmnist"), folder, rows=240, seed=1))


def _cfg() -> EncoderConfig:
    cfg = EncoderConfig(widths={"image": 4, "audio": 4})
    cfg.loader.num_workers = 0
    return cfg


def test_probe_is_a_logistic_regression_on_the_frozen_outputs(small_manifest):
    cfg = _cfg()
    prepared = prepare_seed(small_manifest, 0, 0.15, cfg)
    enc = build_encoders(prepared, cfg)["image"]
    xtr = encoder_outputs(enc, prepared.train.only(["image"]), "image")
    xte = encoder_outputs(enc, prepared.test.only(["image"]), "image")
    assert xtr.shape[0] == len(prepared.train) and xte.shape[0] == len(prepared.test)
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=500).fit(sc.transform(xtr), prepared.train.labels.numpy())
    expected = clf.score(sc.transform(xte), prepared.test.labels.numpy())
    assert probe_accuracy(enc, prepared, "image") == pytest.approx(expected)


def test_probes_cover_the_unimodal_and_each_method_encoder(small_manifest):
    seen = []
    rows = encoder_probes(small_manifest, ["concat"], [0], TrainConfig(epochs=1, batch_size=32), _cfg(),
                          report=seen.append)  # fmt: skip
    assert seen == rows
    assert [(r["model"], r["modality"]) for r in rows] == [
        ("unimodal", "image"), ("unimodal", "audio"), ("concat", "image"), ("concat", "audio")
    ]  # fmt: skip
    assert all(0.0 <= r["probe_accuracy"] <= 1.0 for r in rows)


def test_gradient_cosine_is_measured_every_k_steps_per_modality(small_manifest):
    rows = encoder_gradient_cosine(small_manifest, ["sg-concat"], seed=0, epochs=1, every=2, batch_size=32,
                                   cfg=_cfg())  # fmt: skip
    steps = math.ceil(len(prepare_seed(small_manifest, 0, 0.15, _cfg()).train) / 32)
    assert [r["step"] for r in rows[::2]] == list(range(0, steps, 2))
    cos = np.array([r["cosine"] for r in rows])
    assert np.all(np.abs(cos) <= 1.0) and np.any(cos != 0.0)


def test_gradient_cosine_refuses_a_method_without_preservation(small_manifest):
    with pytest.raises(PMRFusionError, match="no preservation loss"):
        encoder_gradient_cosine(small_manifest, ["concat"], epochs=1, every=5, batch_size=64, cfg=_cfg())


def test_encoder_analyses_refuse_feature_vectors():
    data = load_dataset("handwritten") if default_data_root() else None
    if data is None:
        pytest.skip("no data root")
    with pytest.raises(PMRFusionError, match="feature vectors"):
        encoder_probes(data, ["concat"], [0], TrainConfig(epochs=1))
