"""Regression end to end on real CMU-MOSI, the regression loss options, and the refusal paths."""

import dataclasses

import numpy as np
import pytest
import torch

from pmrfusion.bench.runner import RunSpec, evaluate, fit_method, run_grid
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import available_methods, build_method
from pmrfusion.methods.base import classification_only_methods
from pmrfusion.tasks import regression_loss
from pmrfusion.train.trainer import TrainConfig, predict

CLASSIFICATION_ONLY = classification_only_methods()


@pytest.fixture(scope="module")
def mosi(data_root):
    if not (data_root / "mosi").is_dir():
        pytest.skip("../shared/data/mosi not available")
    return prepare(load_dataset("mosi", data_root), seed=0)


FAST = TrainConfig(epochs=25, patience=8)


def test_concat_regresses_well_beyond_the_training_mean(mosi):
    model, result = fit_method("concat", mosi, 0, {}, FAST)
    recs = evaluate(model, mosi, ["clean"], 0, {"dataset": "mosi", "method": "concat"})
    m = {r["metric"]: r["value"] for r in recs}
    baseline = float((mosi.test.labels - mosi.train.labels.mean()).abs().mean())  # ~1.4
    assert m["mae"] < baseline - 0.3 and m["corr"] > 0.5 and m["acc2"] > 0.7
    # early stopping follows validation MAE: the restored model is the best epoch's
    val_maes = [h["val_mae"] for h in result.history]
    assert result.best_val_mae == pytest.approx(min(val_maes))
    restored = float((predict(model, mosi.val.features).reshape(-1) - mosi.val.labels).abs().mean())
    assert restored == pytest.approx(result.best_val_mae, abs=1e-5)


def test_mse_loss_is_a_different_training(mosi):
    a, _ = fit_method("late", mosi, 0, {}, dataclasses.replace(FAST, epochs=3))
    b, _ = fit_method("late", mosi, 0, {}, dataclasses.replace(FAST, epochs=3, regression_loss="mse"))
    pa, pb = predict(a, mosi.test.features), predict(b, mosi.test.features)
    assert pa.shape == (752, 1) and not torch.allclose(pa, pb)
    assert regression_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 0.0]), "mse") == 5.0
    assert regression_loss(torch.tensor([1.0, -3.0]), torch.tensor([0.0, 0.0])) == 2.0
    with pytest.raises(PMRFusionError, match="unknown regression loss"):
        fit_method("late", mosi, 0, {}, dataclasses.replace(FAST, regression_loss="huber"))
    with pytest.raises(PMRFusionError, match="classification only"):
        fit_method("late", mosi, 0, {}, dataclasses.replace(FAST, label_noise=0.1))


def test_every_regressing_method_has_one_output():
    dims = {"text": 6, "audio": 5, "video": 4}
    feats = {m: torch.randn(3, d) for m, d in dims.items()}
    for name in available_methods():
        if name in CLASSIFICATION_ONLY:
            continue
        torch.manual_seed(0)
        out = build_method(name, dims, 1).eval()(feats, torch.ones(3, 3, dtype=torch.bool))
        assert out.logits.shape == (3, 1), name


@pytest.mark.parametrize("method", sorted(CLASSIFICATION_ONLY))
def test_classification_only_methods_refuse_in_one_line(method, mosi):
    with pytest.raises(PMRFusionError, match=f"method '{method}' does not support regression") as e:
        build_method(method, mosi.dims, 1)
    assert "\n" not in str(e.value)


def test_grid_refuses_before_training(data_root):
    data = load_dataset("mosi", data_root)
    with pytest.raises(PMRFusionError, match="'qmf' does not support regression"):
        run_grid(data, RunSpec(["concat", "qmf"], ("clean",), (0,), train=TrainConfig(epochs=10**6)))
    assert np.isfinite(data.labels).all()
