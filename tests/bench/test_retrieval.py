"""Retrieval metrics against hand-made rankings, and a small end-to-end run on Wikipedia."""

import numpy as np
import pytest
import torch

from pmrfusion.eval.retrieval import (
    average_precision,
    cross_modal_metrics,
    rankings,
    retrieval_metrics,
)

torch.set_num_threads(1)


def test_average_precision_by_hand():
    # relevant at ranks 1, 3, 4: (1/1 + 2/3 + 3/4) / 3
    assert average_precision([1, 0, 1, 1, 0]) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # AP@2: only rank 1 relevant in the top 2 -> 1.0; AP@1 of a miss -> 0
    assert average_precision([1, 0, 1, 1, 0], k=2) == pytest.approx(1.0)
    assert average_precision([0, 1], k=1) == 0.0
    assert average_precision([0, 0, 0]) == 0.0


def test_retrieval_metrics_hand_made_ranking():
    # 3 queries, gallery of 3; labels: q = [0, 1, 0], g = [0, 1, 0]
    labels = np.array([0, 1, 0])
    order = np.array([[2, 1, 0], [1, 0, 2], [1, 0, 2]])
    m = retrieval_metrics(order, labels, labels, ks=(1, 2))
    # q0 (label 0): rel [1,0,1] -> (1 + 2/3)/2; q1: [1,0,0] -> 1; q2: [0,1,1] -> (1/2 + 2/3)/2
    ap = [(1 + 2 / 3) / 2, 1.0, (1 / 2 + 2 / 3) / 2]
    assert m["mAP"] == pytest.approx(np.mean(ap))
    assert m["mAP@1"] == pytest.approx((1 + 1 + 0) / 3)
    # R@k: paired item (row i) position: q0 -> 3rd, q1 -> 1st, q2 -> 3rd
    assert m["R@1"] == pytest.approx(1 / 3)
    assert m["R@2"] == pytest.approx(1 / 3)


def test_rankings_and_cross_modal_perfect_embeddings():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 5)
    centers = rng.normal(size=(4, 8)) * 10
    a = centers[labels] + rng.normal(size=(20, 8)) * 0.01
    b = a + rng.normal(size=(20, 8)) * 0.001
    out = cross_modal_metrics(a, b, labels)
    assert out["img2txt:mAP"] == pytest.approx(1.0) and out["txt2img:mAP"] == pytest.approx(1.0)
    assert out["img2txt:R@1"] == pytest.approx(1.0)
    assert out["mean:mAP"] == pytest.approx(1.0)
    assert rankings(np.array([[0.1, 0.9, 0.5]])).tolist() == [[1, 2, 0]]


def test_random_embeddings_give_chance_map():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(5), 40)
    out = cross_modal_metrics(rng.normal(size=(200, 16)), rng.normal(size=(200, 16)), labels)
    assert abs(out["mean:mAP"] - 0.2) < 0.05  # chance = class frequency


def test_run_retrieval_wikipedia_small(data_root):
    from pmrfusion.bench.retrieval import retrieval_table, run_retrieval
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.train.trainer import TrainConfig

    data = load_dataset("wikipedia", data_root)
    recs = run_retrieval(data, ["rg-cmmp"], [0], TrainConfig(epochs=2, batch_size=256))
    assert {r["method"] for r in recs} == {"cca", "rg-cmmp"}
    keys = {"dataset", "method", "protocol", "condition", "seed", "metric", "value"}
    assert all(keys <= set(r) and r["protocol"] == "retrieval" for r in recs)
    conds = {r["condition"] for r in recs}
    assert {"img2txt:mAP", "txt2img:mAP", "img2txt:mAP@50", "txt2img:R@10"} <= conds
    cca = {r["condition"]: r["value"] for r in recs if r["method"] == "cca"}
    assert cca["mean:mAP"] > 0.15  # well above chance (~0.1 for 10 classes)
    assert "| mean:mAP |" in retrieval_table(recs)


def test_retrieval_under_test_time_noise(data_root):
    """Noise level 0 reproduces the clean records exactly; level 10 lowers CCA's mAP; options checked."""
    import pytest

    from pmrfusion.bench.retrieval import run_retrieval
    from pmrfusion.data.loaders import load_dataset
    from pmrfusion.errors import PMRFusionError
    from pmrfusion.train.trainer import TrainConfig

    data = load_dataset("wikipedia", data_root)
    recs = run_retrieval(data, ["cmmp"], [0], TrainConfig(epochs=1, batch_size=256), noise=["gaussian"])
    for method in ("cca", "cmmp"):
        got = {(r["protocol"], r["condition"]): r["value"] for r in recs if r["method"] == method}
        clean = {c: v for (p, c), v in got.items() if p == "retrieval"}
        assert {c: got[("gaussian", f"gaussian:0/{c}")] for c in clean} == clean
        assert got[("gaussian", "gaussian:10/mean:mAP")] < clean["mean:mAP"] - 0.02
    metric = {r["condition"]: r["metric"] for r in recs}
    assert metric["gaussian:5/img2txt:mAP@50"] == "mAP@50"
    with pytest.raises(PMRFusionError, match="retrieval noise"):
        run_retrieval(data, ["cmmp"], [0], TrainConfig(epochs=1), noise=["missing"])
