"""The RCML protocol: whole-data min-max scaling, seeded 80/20 runs, the conflictive test set."""

import numpy as np
import pytest
import torch

from pmrfusion.bench.rcml import summarize_rcml
from pmrfusion.data.rcml import conflictive_features, minmax_whole, rcml_split
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.protocols import available_protocols, conditions


def _tiny():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    a = np.arange(10, dtype=np.float32)[:, None] * np.array([[1.0, 10.0]], np.float32)  # (10, 2)
    b = -np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # (10, 3)
    return {"a": a, "b": b}, labels


def test_minmax_on_whole_data_and_seeded_split():
    x = {"v": np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]], np.float32)}
    out = minmax_whole(x)["v"]
    assert np.allclose(out[:, 0], [0.0, 1.0, 0.5]) and np.allclose(out[:, 1], 0.0)  # constant -> 0
    tr, te = rcml_split(10, 3)
    assert len(tr) == 8 and len(te) == 2 and sorted(np.r_[tr, te]) == list(range(10))
    assert np.array_equal(rcml_split(10, 3)[0], tr) and not np.array_equal(rcml_split(10, 4)[0], tr)


def test_conflict_replaces_one_view_with_first_row_of_next_class():
    x, y = _tiny()
    test_rows = np.arange(5, 10)  # first rows of classes 0, 1, 2 are rows 0, 1, 2 (train)
    out = conflictive_features(
        x, y, test_rows, 3, np.random.default_rng(0), ratio_noise=0.0, ratio_conflict=1.0
    )
    for m in x:
        assert np.array_equal(out[m][:5], x[m][:5])  # train rows untouched
    first = {0: 0, 1: 1, 2: 2}
    for i in test_rows:
        changed = [m for m in x if not np.array_equal(out[m][i], x[m][i])]
        assert len(changed) == 1
        m = changed[0]
        assert np.array_equal(out[m][i], x[m][first[(y[i] + 1) % 3]])
    assert not np.shares_memory(out["a"], x["a"])


def test_conflict_defaults_count_rows_and_noise_touches_at_most_v_minus_1_views():
    x, y = _tiny()
    rows = np.arange(10)
    out = conflictive_features(x, y, rows, 3, np.random.default_rng(1), ratio_noise=0.0)
    changed_rows = {i for i in rows if any(not np.array_equal(out[m][i], x[m][i]) for m in x)}
    assert len(changed_rows) <= int(0.4 * 10)  # a row replaced by an equal prototype may look unchanged
    noisy = conflictive_features(x, y, rows, 3, np.random.default_rng(2), ratio_noise=1.0, ratio_conflict=0.0)
    per_row = [sum(not np.array_equal(noisy[m][i], x[m][i]) for m in x) for i in rows]
    assert max(per_row) <= 1 and sum(per_row) > 0  # randint(V) views: 0..V-1 of V = 2
    again = conflictive_features(x, y, rows, 3, np.random.default_rng(2), ratio_noise=1.0, ratio_conflict=0.0)
    assert all(np.array_equal(noisy[m], again[m]) for m in x)


def test_conflict_reads_prototype_live_like_the_official_code():
    # the first row of class 1 is a test row; if it is altered first, later copies see the altered row
    x = {"a": np.array([[0.0], [1.0], [2.0]], np.float32), "b": np.array([[5.0], [6.0], [7.0]], np.float32)}
    y = np.array([0, 1, 0])
    out = conflictive_features(
        x, y, np.arange(3), 2, np.random.default_rng(0), ratio_noise=0.0, ratio_conflict=1.0
    )
    for m in x:  # class-0 rows copy from row 1, row 1 copies from row 0, in the drawn order
        assert set(np.unique(out[m])) <= set(np.unique(x[m]))


def test_registered_protocol_and_summary():
    assert "rcml" in available_protocols()
    x, y = _tiny()
    split = TensorSplit({m: torch.from_numpy(v) for m, v in x.items()}, torch.from_numpy(y), torch.arange(10))
    conds = list(conditions("rcml", split, 0))
    assert [c.name for c in conds] == ["normal", "conflictive"]
    assert any(not torch.equal(conds[1].features[m], split.features[m]) for m in x)
    recs = [
        {
            "dataset": "handwritten",
            "method": "ecml",
            "run": r,
            "test_set": "normal",
            "accuracy": a,
            "uncertainty": 0.1,
        }
        for r, a in enumerate([0.99, 0.97])
    ]
    (row,) = summarize_rcml(recs)
    assert row["acc_mean"] == pytest.approx(98.0) and row["acc_std"] == pytest.approx(1.41)  # ddof = 1
    assert row["published_mean"] == 99.40 and row["gap"] == pytest.approx(-1.4)


def test_resume_keeps_finished_runs_and_refuses_other_settings(tmp_path, monkeypatch):
    import pmrfusion.bench.rcml as R

    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x_a=rng.normal(size=(40, 3)), x_b=rng.normal(size=(40, 2)), y=np.arange(40) % 2)
    out = tmp_path / "out"
    R.rcml_benchmark([str(path)], R.RCMLSpec(["concat"], runs=1, epochs=1), str(out))
    def key(recs):  # uncertainty is NaN for concat (NaN != NaN)
        return [(r["run"], r["test_set"], r["accuracy"]) for r in recs]

    first = key(R.read_records(out / "records.csv"))
    assert [k[:2] for k in first] == [(0, "normal"), (0, "conflictive")]
    trained = []
    import pmrfusion.bench.runner as runner  # rcml runs through the runner's fit

    real_train = runner.train
    monkeypatch.setattr(runner, "train", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    R.rcml_benchmark([str(path)], R.RCMLSpec(["concat"], runs=2, epochs=1), str(out), resume=True)
    both = key(R.read_records(out / "records.csv"))
    assert len(trained) == 1 and both[:2] == first and {k[0] for k in both[2:]} == {1}
    with pytest.raises(PMRFusionError, match="cannot resume"):
        R.rcml_benchmark([str(path)], R.RCMLSpec(["concat"], runs=2, epochs=2), str(out), resume=True)
    assert key(R.read_records(out / "records.csv")) == both  # refused before anything was rewritten
