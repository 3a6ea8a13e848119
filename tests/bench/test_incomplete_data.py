"""Every method on data with naturally missing modalities; incomplete training data (train_missing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pmrfusion as pf
from pmrfusion.bench.runner import fit_method, prepare_seed
from pmrfusion.data.presence import drop_training_modalities
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import conditions
from pmrfusion.train.trainer import TrainConfig, predict

METHODS = ("concat", "late", "sg-concat", "qmf", "tmc", "drfuse")


def _gappy(garbage: float, n: int = 60):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    a = rng.normal(size=(n, 4)) + y[:, None]
    b = rng.normal(size=(n, 3)) - y[:, None]
    c = rng.normal(size=(n, 2))
    present = {"a": np.ones(n, bool), "b": np.ones(n, bool), "c": np.ones(n, bool)}
    present["a"][::5] = False  # rows 0, 5, 10, ...: a absent
    present["b"][1::7] = False
    for m, x in (("a", a), ("b", b)):
        x[~present[m]] = garbage  # what the absent cells hold does not matter
    labels = np.array(["low", "mid", "high"])[y]
    return pf.from_arrays({"a": a, "b": b, "c": c}, labels, present=present, split_seed=1)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_on_missing_patterns_and_never_sees_absent_values(method):
    tc = TrainConfig(epochs=2, batch_size=16, quiet=True)
    out = []
    for garbage in (0.0, 1e3):
        data = _gappy(garbage)
        prepared = prepare_seed(data, 0)
        assert prepared.test.present is not None and not prepared.test.present.all()
        model, _ = fit_method(method, prepared, 0, {}, tc)
        logits = predict(model, prepared.test.features, prepared.test.present)
        assert torch.isfinite(logits).all()
        out.append(logits)
    assert torch.equal(out[0], out[1])


def test_protocols_act_on_the_data_as_given():
    prepared = prepare_seed(_gappy(0.0), 0)
    test = prepared.test
    given = test.present
    clean = next(conditions("clean", prepared, 0))
    assert clean.name == "clean" and torch.equal(clean.present, given)
    for cond in conditions("missing", prepared, 0):
        assert not (cond.present & ~given).any()  # only present modalities are dropped
        assert cond.present.any(1).all()  # no row is left with none
    for cond in conditions("gaussian", prepared, 0):
        for i, m in enumerate(test.modalities):
            gone = ~given[:, i]
            assert torch.equal(cond.features[m][gone], test.features[m][gone])  # noise skips absent cells


def test_train_missing_rate_seeded_never_all_and_test_unchanged():
    n = 4000
    rng = np.random.default_rng(0)
    data = pf.from_arrays({"a": rng.normal(size=(n, 2)), "b": rng.normal(size=(n, 2)),
                           "c": rng.normal(size=(n, 2))}, np.arange(n) % 2, split_seed=0)  # fmt: skip
    gappy = drop_training_modalities(data, 0.3, seed=5)
    train, test = data.split("train"), data.split("test")
    mat = np.stack([gappy.present[m] for m in data.modalities], 1)
    assert mat[test].all()  # the test split is untouched
    assert mat[train].any(1).all()  # no sample loses every modality
    # P(cell absent) = 0.3, less the rescued rows (0.3^3 of rows keep one of 3): 0.3 - 0.027 / 3
    assert abs((~mat[train]).mean() - (0.3 - 0.3**3 / 3)) < 0.015
    for m in data.modalities:
        assert (gappy.features[m][~gappy.present[m]] == 0).all()
    again = drop_training_modalities(data, 0.3, seed=5)
    assert all(np.array_equal(again.present[m], gappy.present[m]) for m in data.modalities)
    assert drop_training_modalities(data, 0.0, seed=5) is data
    with pytest.raises(PMRFusionError, match="train_missing"):
        pf.RunSpec(methods=["concat"], train_missing=1.0)


def test_run_grid_with_train_missing_keeps_the_test_split_complete():
    rng = np.random.default_rng(0)
    n = 60
    y = np.arange(n) % 2
    data = pf.from_arrays({"a": rng.normal(size=(n, 3)) + y[:, None], "b": rng.normal(size=(n, 2))}, y)
    spec = pf.RunSpec(methods=["concat"], protocols=["clean", "missing"], seeds=[0], train_missing=0.5,
                      train=TrainConfig(epochs=2, quiet=True))  # fmt: skip
    recs = pf.run_grid(data, spec)
    clean = [r for r in recs if r["condition"] == "clean" and r["metric"] == "accuracy"]
    assert len(clean) == 1 and clean[0]["present"] == ["a", "b"]


def test_experiment_grids_take_train_missing_and_hash_it_only_when_set(tmp_path):
    from pmrfusion.bench.experiment import load_experiment

    text = """
name = "gaps"
title = "Gaps"
out = "{out}"

[[grid]]
id = "{gid}"
dataset = "handwritten"
methods = ["concat"]
{extra}

[[table]]
title = "Accuracy"
metric = "accuracy"
columns = ["clean"]
"""
    out = (tmp_path / "out").as_posix()
    for gid, extra, expect in (("plain", "", None), ("gappy", "train_missing = 0.3", 0.3)):
        path = tmp_path / f"{gid}.toml"
        path.write_text(text.format(out=out, gid=gid, extra=extra))
        grid = load_experiment(path).grid(gid)
        assert grid.spec.train_missing == (expect or 0.0)
        assert grid.settings.get("train_missing") == expect
