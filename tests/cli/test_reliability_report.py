"""Issue 23, report: a clean-only folder gets a report; a results.json that is not a list of
well-formed records is one `error:` line naming the file and record, with nothing written; a
300-character dataset name gets a figure; non-finite values are written as JSON null.

One case per class in a real subprocess, the variants in-process (helpers: test_reliability_suite).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_reliability_suite import SUITE, assert_one_error, cli_subprocess, no_temp_files, run_main


def _records(dataset: str = "toy", protocols: tuple[str, ...] = ("clean", "gaussian")) -> list[dict]:
    conds = {"clean": ["clean"], "gaussian": ["gaussian:0", "gaussian:5"]}
    return [
        {"dataset": dataset, "method": m, "protocol": p, "condition": c, "present": ["a", "b"],
         "seed": s, "metric": "accuracy", "value": 0.5 + 0.1 * s}  # fmt: skip
        for m in ("concat", "late")
        for s in (0, 1)
        for p in protocols
        for c in conds[p]
    ]


@pytest.fixture(scope="module")
def clean_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `--protocols clean` folder (the suite's; bench writes the same results.json)."""
    out = tmp_path_factory.mktemp("clean") / "out"
    assert run_main([*SUITE, "--out", str(out)])[0] == 0
    return out


def test_report_on_a_clean_only_folder(clean_only, tmp_path):
    code, text = cli_subprocess(["report", str(clean_only)], tmp_path)
    assert code == 0 and "Traceback" not in text, text
    report = (clean_only / "report.md").read_text()
    assert "## Clean test accuracy" in report and "No corruption protocol in the records" in report
    assert not (clean_only / "fig_robustness.png").exists() and no_temp_files(clean_only)


def _set(i: int, **fields: object) -> Callable[[list[dict]], object]:
    def change(records: list[dict]) -> object:
        records[i].update(fields)
        return records

    return change


def _drop(key: str) -> Callable[[list[dict]], object]:
    def change(records: list[dict]) -> object:
        del records[2][key]
        return records

    return change


BAD_RESULTS = [
    (_set(0, value="abc"), "record 0 has value 'abc', not a number or null"),
    (_set(1, seed="x"), "record 1 has seed 'x', not an integer >= 0"),
    (_set(1, seed=True), "record 1 has seed True, not an integer >= 0"),
    (_drop("metric"), "record 2 lacks metric"),
    (_set(3, present=3), "record 3 has present 3, not a list of modality names"),
    (_set(0, method=None), "record 0 has method None, not a non-empty string"),
    (_set(0, dataset=None), "record 0 has dataset None, not a non-empty string"),
    (lambda records: {"records": records}, "is not a list of records (it holds dict)"),
    (lambda records: [*records, 7], f"record {len(_records())} is int, not an object"),
]


@pytest.mark.parametrize("change, needle", BAD_RESULTS, ids=[c[1] for c in BAD_RESULTS])
def test_bad_results_json_is_one_error_and_nothing_written(tmp_path, capsys, change, needle):
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(change(_records())))
    code, text = run_main(["report", str(folder)], capsys)
    assert_one_error(code, text, f"{folder}/results.json")
    assert needle in text.splitlines()[0], text
    assert sorted(p.name for p in folder.iterdir()) == ["results.json"]


def test_bad_results_json_is_one_error_in_a_subprocess(tmp_path):
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(_set(0, value="abc")(_records())))
    code, text = cli_subprocess(["report", str(folder)], tmp_path)
    assert_one_error(code, text, f"{folder}/results.json: record 0 has value 'abc'")
    assert sorted(p.name for p in folder.iterdir()) == ["results.json"]


def test_a_300_character_dataset_name_gets_its_figure(tmp_path, capsys):
    folder = tmp_path / "res"
    folder.mkdir()
    name = "d" * 300
    (folder / "results.json").write_text(json.dumps(_records(name) + _records("d" * 299 + "/")))
    code, text = run_main(["report", str(folder)], capsys)
    assert code == 0, text
    figures = sorted(p.name for p in folder.glob("fig_noise_*.png"))
    assert len(figures) == 2 and all(len(f) < 120 for f in figures)  # two names, two figures
    report = (folder / "report.md").read_text()
    assert all(f"]({f})" in report for f in figures)


def test_non_finite_values_are_json_null_and_said(tmp_path, capsys):
    """All-zero test targets: the non-zero metrics are undefined -> null, with a note; report reads it."""
    rng = np.random.default_rng(0)
    y = np.round(rng.normal(size=60), 2)
    y[40:] = 0.0
    data = tmp_path / "zeros.npz"
    np.savez(data, x_a=rng.normal(size=(60, 3)), x_b=rng.normal(size=(60, 4)), y=y,
             train_idx=np.arange(40), test_idx=np.arange(40, 60))  # fmt: skip
    out = tmp_path / "out"
    argv = ["bench", "--dataset", str(data), "--methods", "concat", "--epochs", "1", "--seeds", "1",
            "--protocols", "clean", "--out", str(out)]  # fmt: skip
    code, text = cli_subprocess(argv, tmp_path)
    assert code == 0 and "Traceback" not in text, text

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in results.json")

    records = json.loads((out / "results.json").read_text(), parse_constant=refuse)  # standard JSON
    undefined = [r["metric"] for r in records if r["value"] is None]
    assert "acc2_nonzero" in undefined, records  # no non-zero label left
    assert "undefined" in (out / "results.md").read_text()
    code, text = run_main(["report", str(out)], capsys)
    assert code == 0, text
    assert "some values are undefined" in (out / "report.md").read_text()
