"""Issue 23, rcml: a row cut off by a stop is dropped and its run redone by --resume (never kept
with a wrong value, never a reason to refuse the file); a damaged settings.json, a rerun over
finished records without --resume, a huge --runs or a method given twice are one `error:` line
with nothing changed; --resume with fewer runs summarises only those.

One case per class in a real subprocess, the variants in-process (helpers: test_reliability_suite).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_reliability_suite import assert_one_error, cli_subprocess, no_temp_files, run_main, snapshot

RCML = ["rcml", "--datasets", "handwritten", "--methods", "tmc", "--runs", "3", "--epochs", "1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT of a finished tiny rcml run (3 runs of tmc: 6 records; read-only, copy it)."""
    out = tmp_path_factory.mktemp("rcml") / "done"
    assert run_main([*RCML, "--out", str(out)])[0] == 0
    return out


def copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "r"
    shutil.copytree(finished, out)
    return out


def rows(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "records.csv").read_text())))


def same_runs(a: list[dict], b: list[dict]) -> bool:
    """The same runs and test sets with the same values (a rerun may differ in the last digits: this
    process trains with 2 torch threads, a CLI subprocess with 1)."""
    def key(r: dict) -> tuple:
        return r["dataset"], r["method"], r["run"], r["test_set"]

    return [key(r) for r in a] == [key(r) for r in b] and all(
        float(x["accuracy"]) == pytest.approx(float(y["accuracy"]), abs=1e-3)
        and (x["uncertainty"] == y["uncertainty"] == "nan"
             or float(x["uncertainty"]) == pytest.approx(float(y["uncertainty"]), abs=1e-4))  # fmt: skip
        for x, y in zip(a, b)
    )


def _cut(out: Path, keep_fields: int, chars: int = 0) -> str:
    """Cut records.csv inside its last row: after `keep_fields` fields and `chars` characters of the
    next one (as a stop in the middle of writing it). Returns the full last row."""
    text = (out / "records.csv").read_text()
    body, last = text[: text.rstrip().rfind("\n") + 1], text[text.rstrip().rfind("\n") + 1 :]
    fields = last.rstrip("\r\n").split(",")
    cut = ",".join(fields[:keep_fields]) + "," + fields[keep_fields][:chars]
    (out / "records.csv").write_text(body + cut)
    return last.rstrip("\r\n")


def test_a_row_cut_inside_a_number_is_redone_by_resume(finished, tmp_path):
    out = copy(finished, tmp_path)
    full = _cut(out, 5, 3)  # "...,conflictive,0.8123,0.0" : the uncertainty cut after 3 characters
    code, text = cli_subprocess([*RCML, "--out", str(out), "--resume"], tmp_path)
    assert code == 0 and "Traceback" not in text, text
    said = " ".join(text.split())
    assert "dropped line 7, cut off when the run stopped; that run is rerun" in said, text
    assert same_runs(rows(out), rows(finished))  # run 2 redone, nothing kept half
    redone = rows(out)[-1]
    assert float(redone["uncertainty"]) == pytest.approx(float(full.split(",")[-1]), abs=1e-4)
    summary = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    assert [r["runs"] for r in summary] == ["3", "3"]


def test_a_row_cut_before_its_last_fields_is_redone_by_resume(finished, tmp_path, capsys):
    out = copy(finished, tmp_path)
    _cut(out, 4, 2)  # the accuracy cut, the uncertainty missing
    code, text = run_main([*RCML, "--out", str(out), "--resume"], capsys)
    assert code == 0, text
    assert same_runs(rows(out), rows(finished)) and no_temp_files(out)


def test_summarize_refuses_a_cut_file_in_one_line(finished, tmp_path, capsys):
    out = copy(finished, tmp_path)
    _cut(out, 5, 3)
    argv = ["rcml", "--summarize", str(out / "records.csv"), "--out", str(tmp_path / "s")]
    code, text = run_main(argv, capsys)
    assert_one_error(code, text, f"{out}/records.csv: line 7 is cut off")


def _settings(text: str) -> Callable[[Path], object]:
    return lambda out: (out / "settings.json").write_text(text)


BAD_ROW = "dataset,method,run,test_set,accuracy,uncertainty\nhandwritten,tmc,x,normal,0.5,0.1\n"
DAMAGED = [
    (_settings("{not json"), "settings.json is unreadable"),
    (_settings("[1, 2]"), "settings.json is not an object of per-method settings"),
    (_settings('{"tmc": 3}'), "settings.json is not an object of per-method settings"),
    (_settings("{}"), "holds runs of tmc, which"),
    (lambda out: (out / "records.csv").write_text(BAD_ROW), "line 2"),
]


@pytest.mark.parametrize("damage, needle", DAMAGED, ids=[c[1] for c in DAMAGED])
def test_a_damaged_out_is_one_error_and_left_as_it_was(finished, tmp_path, capsys, damage, needle):
    out = copy(finished, tmp_path)
    damage(out)
    before = snapshot(out)
    code, text = run_main([*RCML, "--out", str(out), "--resume"], capsys)
    assert_one_error(code, text, needle)
    assert snapshot(out) == before


def test_a_corrupt_settings_json_is_one_error_in_a_subprocess(finished, tmp_path):
    out = copy(finished, tmp_path)
    (out / "settings.json").write_text('{"tmc": {"epochs"')
    before = snapshot(out)
    code, text = cli_subprocess([*RCML, "--out", str(out), "--resume"], tmp_path)
    assert_one_error(code, text, f"cannot resume: {out}/settings.json is unreadable")
    assert snapshot(out) == before


def test_a_rerun_without_resume_refuses_to_overwrite_records(finished, tmp_path):
    out = copy(finished, tmp_path)
    before = snapshot(out)
    code, text = cli_subprocess([*RCML, "--out", str(out)], tmp_path)
    assert_one_error(code, text, f"{out}/records.csv holds 6 rcml records: --resume keeps them")
    assert snapshot(out) == before


def test_resume_with_fewer_runs_summarises_only_those_and_keeps_the_rest(finished, tmp_path, capsys):
    out = copy(finished, tmp_path)
    argv = [*RCML[:-4], "--runs", "2", "--epochs", "1", "--out", str(out), "--resume"]
    code, text = run_main(argv, capsys)
    assert code == 0, text
    assert "keeps 1 finished runs outside this selection" in " ".join(text.split()), text
    summary = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    assert [r["runs"] for r in summary] == ["2", "2"]
    assert rows(out) == rows(finished)  # run 2 is still in records.csv
    settings = [json.loads((o / "settings.json").read_text()) for o in (out, finished)]
    assert settings[0] == settings[1]


OPTIONS = [
    (["--runs", str(2**32)], "--runs 4294967296: at most 10000 runs"),
    (["--methods", "tmc,tmc"], "--methods lists tmc more than once"),
    (["--datasets", "handwritten,handwritten"], "--datasets lists handwritten more than once"),
]


@pytest.mark.parametrize("extra, needle", OPTIONS, ids=[c[1] for c in OPTIONS])
def test_huge_runs_and_duplicated_names_are_one_error(tmp_path, capsys, extra, needle):
    out = tmp_path / "out"
    code, text = run_main([*RCML, *extra, "--out", str(out)], capsys)
    assert_one_error(code, text, needle)
    assert not out.exists()
