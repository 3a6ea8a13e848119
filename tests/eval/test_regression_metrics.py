"""MOSI sentiment metrics against hand-computed values (ties at 0 in both Acc2 conventions)."""

import math

import numpy as np
import pytest
import torch

from pmrfusion.eval.regression_metrics import primary_metric, regression_metrics, task_metrics

# label 0 at row 0 (excluded by the non-zero convention, non-negative in the other);
# prediction exactly 0 at row 2 (non-negative in the first convention, negative in the second)
PRED = [1.0, -0.5, 0.0, 2.6, -3.4, 0.4]
LABELS = [0.0, -1.0, -0.2, 3.0, -2.6, 0.6]


def test_hand_values():
    m = regression_metrics(torch.tensor(PRED), torch.tensor(LABELS))
    assert m["mae"] == pytest.approx((1 + 0.5 + 0.2 + 0.4 + 0.8 + 0.2) / 6)
    # neg/non-neg: y>=0 = TFFTFT, p>=0 = TFTTFT -> row 2 wrong
    assert m["acc2"] == pytest.approx(5 / 6)
    # weighted F1: class T P=3/4 R=1 F1=6/7; class F P=1 R=2/3 F1=4/5; 3 samples each
    assert m["f1"] == pytest.approx((6 / 7 + 4 / 5) / 2)
    # non-zero labels (rows 1..5): y>0 = FFTFT, p>0 = FFTFT (p=0 counts as negative)
    assert m["acc2_nonzero"] == pytest.approx(1.0)
    assert m["f1_nonzero"] == pytest.approx(1.0)
    # rounded and clipped: y -> 0,-1,0,3,-3,1 ; p -> 1,0,0,3,-3,0 (round half to even, -3.4 -> -3)
    assert m["acc7"] == pytest.approx(3 / 6)


def test_pearson_and_clipping():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))
    assert m["corr"] == pytest.approx(0.5)  # cov 0.5 / (var 1 * var 1) with n-1 = 2
    clipped = regression_metrics(np.array([4.4, -5.0]), np.array([3.0, -3.0]))
    assert clipped["acc7"] == 1.0 and clipped["mae"] == pytest.approx((1.4 + 2.0) / 2)
    const = regression_metrics(np.zeros(3), np.array([1.0, -1.0, 2.0]))
    assert const["corr"] == 0.0  # undefined correlation of a constant prediction reads 0


def test_all_zero_labels_and_dispatch():
    m = regression_metrics([0.5, -0.5], [0.0, 0.0])
    assert m["acc2"] == 0.5 and math.isnan(m["acc2_nonzero"])
    reg = task_metrics(torch.tensor([[0.5], [-1.0]]), torch.tensor([1.0, -1.0]), 1)
    assert reg["acc2"] == 1.0 and reg["mae"] == pytest.approx(0.25)
    cls = task_metrics(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]), 2)
    assert cls["accuracy"] == 1.0 and "mae" not in cls
    assert primary_metric([{"metric": "mae"}, {"metric": "acc2"}]) == "mae"
    assert primary_metric([{"metric": "accuracy"}]) == "accuracy"


def test_seven_subset_table_averages_per_seed():
    from pmrfusion.eval.subset_table import SUBSET_ORDER, subset_means, subset_table_csv

    mods = {"a": "audio", "t": "text", "v": "video"}
    records = []
    for seed in (0, 1):
        for i, s in enumerate(SUBSET_ORDER):
            present = [mods[c] for c in s.split(",")]
            proto = "clean" if len(present) == 3 else "missing"
            records.append(
                {
                    "method": "m",
                    "protocol": proto,
                    "present": present,
                    "seed": seed,
                    "metric": "mae",
                    "value": i + seed,
                }
            )
    means = subset_means(records, ["mae"])
    assert means[("m", "a,t", "mae")].tolist() == [4.0, 5.0]
    assert means[("m", "avg", "mae")].tolist() == [3.0, 4.0]  # mean of 0..6, then of 1..7
    assert "m,avg,mae,3.5000,0.7071,2" in subset_table_csv(records, ["mae"])


def test_worst_seed_of_mae_is_the_largest():
    from pmrfusion.bench.records import summarise as summarize

    base = {"dataset": "d", "method": "m", "protocol": "clean", "condition": "clean"}
    recs = [{**base, "metric": k, "value": v} for k in ("mae", "acc2") for v in (0.9, 1.1)]
    assert summarize(recs, "mae")[0].worst == 1.1 and summarize(recs, "acc2")[0].worst == 0.9
