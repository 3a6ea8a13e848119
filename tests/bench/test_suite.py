"""The benchmark suite: resumable cells, parallel jobs, skipped methods, report."""

import json
from dataclasses import dataclass

import pytest
import torch
from typer.testing import CliRunner

from pmrfusion.bench.report import write_report
from pmrfusion.bench.suite import SuiteSpec, cell_path, run_suite
from pmrfusion.cli import app
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import base
from pmrfusion.train.trainer import TrainConfig


def _spec(**kw):
    args = dict(
        datasets=["handwritten"],
        methods=["concat", "late"],
        seeds=[0, 1],
        train=TrainConfig(epochs=2, batch_size=128),
    )
    args.update(kw)
    return SuiteSpec(**args)


class Stop(Exception):
    pass


def test_interrupted_suite_resumes_to_the_same_results(tmp_path):
    spec = _spec()
    # reference: one uninterrupted run in 2 worker processes
    full = run_suite(spec, tmp_path / "full", jobs=2)
    assert full.ran == 4 and full.reused == 0 and not full.notes
    # interrupted after 2 of 4 cells (in-process), then resumed
    seen = []

    def stop_after_two(cell, payload, done, total):
        seen.append(cell)
        if done == 2:
            raise Stop

    part = tmp_path / "part"
    with pytest.raises(Stop):
        run_suite(spec, part, jobs=1, on_cell=stop_after_two)
    assert len(list((part / "cells").glob("*.json"))) == 2
    assert not (part / "results.json").exists()
    finished = {c: cell_path(part, c).stat().st_mtime_ns for c in seen}
    again = []
    resumed = run_suite(spec, part, jobs=1, on_cell=lambda c, *_: again.append(c))
    assert resumed.ran == 2 and resumed.reused == 2
    assert not set(again) & set(seen)  # finished cells are not recomputed
    assert all(cell_path(part, c).stat().st_mtime_ns == t for c, t in finished.items())
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((part / "results.json").read_text())
    assert a == b
    methods = {r["method"] for r in a}
    protocols = {r["protocol"] for r in a}
    assert methods == {"concat", "late"}
    assert protocols == {
        "clean", "missing", "missing_mean", "gaussian", "salt_pepper", "salt_pepper_qmf", "conflict"
    }  # fmt: skip
    assert {r["seed"] for r in a} == {0, 1}
    # a third call has nothing left to do and rewrites the same results
    assert run_suite(spec, part).ran == 0
    assert json.loads((part / "results.json").read_text()) == a


def test_other_settings_are_refused(tmp_path):
    run_suite(_spec(seeds=[0], methods=["concat"]), tmp_path)
    with pytest.raises(PMRFusionError, match="other settings"):
        run_suite(_spec(seeds=[0], methods=["concat"], train=TrainConfig(epochs=3)), tmp_path)
    # more cells with the same settings are fine
    assert run_suite(_spec(seeds=[0, 1], methods=["concat"]), tmp_path).ran == 1


@dataclass
class _NoOpts:
    pass


def test_failing_method_is_skipped_with_a_note(tmp_path, monkeypatch):
    def builder(dims, num_classes, cfg):
        raise PMRFusionError("retrieval only: no classifier")

    monkeypatch.setitem(base._REGISTRY, "broken", base.MethodSpec("broken", _NoOpts, builder, "test"))
    res = run_suite(_spec(methods=["concat", "broken"], seeds=[0]), tmp_path)
    assert res.ran == 2
    assert len(res.notes) == 1 and "retrieval only" in res.notes[0]
    payload = json.loads(cell_path(tmp_path, res_cell := _spec().cells()[0]).read_text())
    assert payload["status"] == "ok" and res_cell.method == "concat"
    assert {r["method"] for r in res.records} == {"concat"}
    assert "retrieval only" in (tmp_path / "results.md").read_text()


def test_cli_suite_and_report(tmp_path):
    threads = torch.get_num_threads()
    runner = CliRunner()
    out = tmp_path / "s"
    args = ["--datasets", "handwritten", "--methods", "concat,late",
            "--seeds", "2", "--epochs", "2", "--batch-size", "128", "--quiet", "--out", str(out)]  # fmt: skip
    r = runner.invoke(app, ["suite", "paper", *args])
    assert r.exit_code == 0, r.output
    assert "4 cells run, 0 reused" in r.output
    r = runner.invoke(app, ["bench", "--suite", "paper", *args])  # the deprecated alias: same run
    assert r.exit_code == 0 and "0 cells run, 4 reused" in r.output
    r = runner.invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    torch.set_num_threads(threads)
    text = (out / "report.md").read_text()
    for needle in ("## Clean test accuracy", "## Missing modalities", "## Robustness summary",
                   "## Comparison with published numbers", "not comparable", "Trust4Conflict",
                   "fig_noise_handwritten.png", "92.76±0.15"):  # fmt: skip
        assert needle in text, needle
    assert (out / "fig_noise_handwritten.png").stat().st_size > 1000
    assert (out / "fig_robustness.png").exists()
    # the report's clean numbers are the results' numbers
    recs = json.loads((out / "results.json").read_text())
    acc = sorted(r["value"] for r in recs if r["method"] == "concat" and r["condition"] == "clean"
                 and r["metric"] == "accuracy")  # fmt: skip
    mean = 100 * sum(acc) / len(acc)
    assert f"| concat | {mean:.2f} ± " in text


def test_report_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(PMRFusionError, match="results.json"):
        write_report(tmp_path)


def test_relink_rewrites_relative_links_only(tmp_path):
    from pmrfusion.bench.report import relink

    text = "![f](fig_a.png) [t](sub/t.md) [h](#x) [w](https://e.org/a.png) [r](/abs.png)"
    out = relink(text, tmp_path / "docs" / "suite", tmp_path)
    expected = (
        "![f](docs/suite/fig_a.png) [t](docs/suite/sub/t.md) [h](#x) [w](https://e.org/a.png) [r](/abs.png)"
    )
    assert out == expected
    assert relink(text, tmp_path, tmp_path) == text


def test_demote_headings_skips_code_fences():
    from pmrfusion.bench.report import demote_headings

    text = "# Title\ntext\n```\n# a shell comment\n```\n## Sub"
    assert demote_headings(text) == "## Title\ntext\n```\n# a shell comment\n```\n### Sub"
