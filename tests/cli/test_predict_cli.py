"""`pmrfusion predict` and `eval --out`, from a folder other than the one the model was trained in."""

import json

import numpy as np

from tests.cli.cli_helpers import assert_one_error, run_main


def _npz(path, n=60):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    np.savez(path, x_a=rng.normal(size=(n, 4)) + y[:, None], x_b=rng.normal(size=(n, 2)), y=y)


def test_train_then_eval_and_predict_from_another_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    _npz(tmp_path / "project" / "data.npz")
    code, err = run_main(["train", "--dataset", "data.npz", "--method", "concat", "--epochs", "1",
                          "--quiet", "--save", "models/m.pt"], capsys)  # fmt: skip
    assert code == 0, err
    monkeypatch.chdir(tmp_path / "elsewhere")
    load = "../project/models/m.pt"
    code, err = run_main(["eval", "--load", load, "--protocols", "clean", "--out", "r.json"], capsys)
    assert code == 0, err
    records = json.loads((tmp_path / "elsewhere" / "r.json").read_text())
    assert {r["metric"] for r in records} >= {"accuracy"} and records[0]["dataset"] == "data"
    code, err = run_main(["eval", "--load", load, "--protocols", "clean", "--out", "r.json"], capsys)
    assert_one_error(code, err, "r.json already exists")
    code, err = run_main(["eval", "--load", load, "--out", "r.txt"], capsys)
    assert_one_error(code, err, "must end in .json or .csv")
    code, err = run_main(["predict", "--load", load, "--out", "p.csv"], capsys)
    assert code == 0, err
    lines = (tmp_path / "elsewhere" / "p.csv").read_text().splitlines()
    assert lines[0] == "id,prediction,prob:0,prob:1,prob:2,present" and len(lines) == 61
    assert lines[1].startswith("0,") and lines[1].endswith(",a+b")
    code, err = run_main(["predict", "--load", load, "--out", "p.csv"], capsys)
    assert_one_error(code, err, "p.csv already exists (pass --overwrite")
    code, err = run_main(["predict", "--load", load, "--out", "p.csv", "--overwrite"], capsys)
    assert code == 0, err
