"""The command line as a user runs it: subprocesses, exit codes, files on disk."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "pmrfusion", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_bench_on_unseen_npz_writes_records(tmp_path):
    src = np.load(
        os.path.join(
            os.path.dirname(__file__), "..", "..", "src", "pmrfusion", "data", "builtin", "handwritten.npz"
        )
    )
    # a dataset the tool has never seen: 3 of the views, different names, no split in the file
    np.savez(
        tmp_path / "digits.npz",
        x_pix=src["x_pixel"],
        x_fou=src["x_fourier"],
        x_kar=src["x_karhunen"],
        y=src["y"],
    )
    out = tmp_path / "out"
    r = run(
        "bench",
        "--dataset",
        str(tmp_path / "digits.npz"),
        "--methods",
        "concat,sg-concat",
        "--protocols",
        "clean,missing,gaussian",
        "--seeds",
        "2",
        "--epochs",
        "15",
        "--out",
        str(out),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    records = json.loads((out / "results.json").read_text())
    assert {"dataset", "method", "protocol", "condition", "seed", "metric", "value"} <= set(records[0])
    acc = [x for x in records if x["metric"] == "accuracy"]
    conds = {x["condition"] for x in acc}
    assert {"clean", "missing:pix", "keep:kar", "gaussian:5"} <= conds
    assert {x["seed"] for x in acc} == {0, 1}
    assert all(0.0 <= x["value"] <= 1.0 for x in acc)
    clean = [x["value"] for x in acc if x["condition"] == "clean"]
    assert min(clean) > 0.9
    assert (out / "results.csv").exists() and "mean ± std" in (out / "results.md").read_text()
    assert "stratified" in r.stdout  # the split made for a file without one is reported


def test_train_save_and_eval_load(tmp_path):
    ckpt = tmp_path / "m.pt"
    r = run("train", "--method", "concat", "--epochs", "5", "--save", str(ckpt), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and ckpt.exists()
    r = run("eval", "--load", str(ckpt), "--protocols", "clean,missing")
    assert r.returncode == 0, r.stderr
    assert "keep:morph" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["bench", "--methods", "concat,nope"], "unknown method 'nope'"),
        (["bench", "--protocols", "clean,nope"], "unknown protocol 'nope'"),
        (["bench", "--dataset", "missing_file.npz"], "not found"),
        (["train", "--set", "n=0", "--method", "sg-concat"], "option n=0 is out of range"),
        (["eval", "--load", "nope.pt"], "checkpoint not found"),
        (["retrieval", "--dataset", "handwritten"], "needs exactly 2 modalities"),
        (["suite", "nope"], "unknown suite 'nope'"),
        (["bench", "--task", "nope"], "unknown task 'nope'"),
    ],
)
def test_errors_are_one_clear_line(tmp_path, args, message):
    r = run(*args, "--out", str(tmp_path / "o")) if args[0] in ("bench", "suite", "retrieval") else run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()  # nothing half-written


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            {"x_a": np.array([[0.0, np.inf]] * 4), "x_b": np.ones((4, 2)), "y": np.array([0, 1, 0, 1])},
            "NaN/inf",
        ),
        ({"x_a": np.zeros((3, 2)), "x_b": np.ones((4, 2)), "y": np.array([0, 1, 0, 1])}, "has 3 rows"),
        (
            {"x_a": np.zeros((4, 2)), "x_b": np.ones((4, 2)), "y": np.array([0, 1, 0, 1]), "num_classes": 1},
            "out of range",
        ),
        ({"x_a": np.zeros((4, 0)), "x_b": np.ones((4, 2)), "y": np.array([0, 1, 0, 1])}, "dimension 0"),
    ],
)
def test_bad_files_are_one_clear_line(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    r = run("bench", "--dataset", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
