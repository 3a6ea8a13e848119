"""`pmrfusion report` on a regression results folder (MOSI): MAE / Acc2 / F1 / corr per condition."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pmrfusion.bench.records import write_results
from pmrfusion.bench.report import write_report
from pmrfusion.bench.runner import RunSpec, run_grid
from pmrfusion.cli import app
from pmrfusion.data.loaders import load_dataset
from pmrfusion.train.trainer import TrainConfig


@pytest.fixture(scope="module")
def folder(data_root, tmp_path_factory):
    if not (data_root / "mosi").is_dir():
        pytest.skip("../shared/data/mosi not available")
    spec = RunSpec(methods=["concat", "late"], protocols=["clean", "missing", "gaussian"], seeds=[0, 1],
                   train=TrainConfig(epochs=1, batch_size=128))  # fmt: skip
    out = tmp_path_factory.mktemp("mosi-report")
    write_results(out, run_grid(load_dataset("mosi", data_root), spec))
    return out


def test_report_on_a_regression_folder(folder):
    threads = torch.get_num_threads()
    r = CliRunner().invoke(app, ["report", str(folder)])
    torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    text = (folder / "report.md").read_text()
    for needle in ("## Regression: clean test set", "| method | MAE | corr | Acc2 (%) | F1 (%) |",
                   "### mosi, missing", "| keep:text | concat |", "### mosi, gaussian",
                   "## Regression: robustness summary", "fig_noise_mosi.png", "Seeds: 0, 1"):  # fmt: skip
        assert needle in text, needle
    assert "accuracy" not in text.lower().replace("acc2", "").replace("acc7", "")
    assert (folder / "fig_noise_mosi.png").stat().st_size > 1000
    # the numbers are the records' numbers; the worst seed of MAE is the largest
    recs = json.loads((folder / "results.json").read_text())
    mae = [x["value"] for x in recs
           if x["method"] == "late" and x["condition"] == "clean" and x["metric"] == "mae"]  # fmt: skip
    assert f"| late | {np.mean(mae):.3f} ± {np.std(mae, ddof=1):.3f} ({max(mae):.3f}) |" in text


def test_mixed_folder_reports_both_tasks(folder, tmp_path):
    recs = json.loads((folder / "results.json").read_text())
    acc = [{**x, "dataset": "toy", "metric": "accuracy", "value": 0.5} for x in recs if x["metric"] == "mae"]
    write_results(tmp_path, recs + acc)
    text = write_report(tmp_path).read_text()
    assert "## Clean test accuracy" in text and "## Regression: clean test set" in text
    assert "Datasets: toy, mosi." in text
