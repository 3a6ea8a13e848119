"""Experiments as files: loading, running, resuming, provenance, pages, and computed verdicts."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from pmrfusion.bench import experiment_run
from pmrfusion.bench.claims import Claim, judge, load_claims
from pmrfusion.bench.experiment import load_experiment
from pmrfusion.bench.experiment_page import CLAIMS_FILES, render_page
from pmrfusion.bench.experiment_run import run_experiment
from pmrfusion.bench.experiment_store import CELLS_FILE, RECORDS_FILE, ExperimentStore
from pmrfusion.bench.provenance import PROVENANCE_KEYS, source_hash
from pmrfusion.bench.runner import run_grid
from pmrfusion.bench.selectors import per_seed
from pmrfusion.data.loaders import load_dataset
from pmrfusion.errors import PMRFusionError
from pmrfusion.eval.paired import paired_difference

TINY = """
name = "tiny"
title = "Tiny"
out = "{out}"

[defaults]
seeds = 2
protocols = ["clean", "missing"]
train = {{ epochs = {epochs}, patience = 2 }}

[[grid]]
id = "hw"
dataset = "handwritten"
methods = ["concat", "late"]

[[table]]
title = "Accuracy"
metric = "accuracy"
columns = ["clean", "keep-one", "missing"]
"""


def write_experiment(tmp_path: Path, epochs: int = 1, extra: str = "") -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(out=(tmp_path / "out").as_posix(), epochs=epochs) + extra)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exp")
    exp = load_experiment(write_experiment(tmp))
    store = run_experiment(exp)
    return tmp, exp, store


def test_records_are_the_runners_records_plus_diagnostics(tiny_run):
    tmp, exp, store = tiny_run
    grid = exp.grid("hw")
    expected = run_grid(load_dataset("handwritten"), grid.spec)
    stored = ExperimentStore.read(exp.out)  # read back from disk
    measured = [r for r in stored.all_records() if r["protocol"] != "training"]
    key = lambda r: (r["method"], r["seed"], r["protocol"], r["condition"], r["metric"])  # noqa: E731
    assert sorted(measured, key=key) == sorted(({"grid": "hw", **r} for r in expected), key=key)
    diagnostics = {r["metric"] for r in stored.all_records() if r["protocol"] == "training"}
    assert {"best_epoch", "epochs_run", "val_accuracy", "task@first", "task@best"} <= diagnostics
    assert len(stored.cells) == 4


def test_cells_carry_provenance(tiny_run):
    _, exp, _ = tiny_run
    header = (exp.out / CELLS_FILE).read_text().splitlines()[0].split(",")
    assert set(PROVENANCE_KEYS) <= set(header)
    store = ExperimentStore.read(exp.out)
    provs = [c.provenance for c in store.cells.values()]
    assert {p.source_hash for p in provs} == {source_hash()}
    assert len({p.data_fingerprint for p in provs}) == 1
    # concat and late have different settings, so different config hashes; seeds share theirs
    by_method = {}
    for key, cell in store.cells.items():
        by_method.setdefault(key[2], set()).add(cell.provenance.config_hash)
    assert all(len(h) == 1 for h in by_method.values())
    assert by_method["concat"] != by_method["late"]


def test_a_folder_with_results_needs_resume_or_overwrite(tiny_run, monkeypatch):
    _, exp, _ = tiny_run
    with pytest.raises(PMRFusionError, match="--resume to continue"):
        run_experiment(exp)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished, current cell was run again")

    monkeypatch.setattr(experiment_run, "run_grid", no_training)
    before = (exp.out / RECORDS_FILE).read_bytes()
    run_experiment(exp, resume=True)
    assert (exp.out / RECORDS_FILE).read_bytes() == before


def test_resume_reruns_cells_whose_settings_changed(tiny_run, tmp_path):
    tmp, exp, _ = tiny_run
    store = ExperimentStore.read(exp.out)
    changed = load_experiment(write_experiment(tmp_path, epochs=2))
    changed = dataclasses.replace(changed, out=tmp_path / "copy")
    store.folder = changed.out
    store.save()
    ran = []
    real = experiment_run.run_grid

    def counting(data, spec, **kwargs):
        ran.append(sorted(set(spec.methods)))
        return real(data, spec, **kwargs)

    experiment_run.run_grid = counting
    try:
        after = run_experiment(changed, resume=True)
    finally:
        experiment_run.run_grid = real
    assert ran, "cells trained with 1 epoch were kept for a 2-epoch experiment"
    epochs = {r["value"] for r in after.all_records() if r["metric"] == "epochs_run"}
    assert epochs == {2.0}


def test_a_cut_write_drops_the_unfinished_cell(tiny_run, tmp_path):
    _, exp, _ = tiny_run
    store = ExperimentStore.read(exp.out)
    store.folder = tmp_path
    store.save()
    lines = (tmp_path / CELLS_FILE).read_text().splitlines()
    (tmp_path / CELLS_FILE).write_text("\n".join(lines[:-1]) + "\n")  # records written, cell row not
    again = ExperimentStore.read(tmp_path)
    assert len(again.cells) == len(store.cells) - 1
    assert len(again.all_records()) < len(store.all_records())


def test_page_refuses_to_pool_code_versions_unless_the_file_says_why(tiny_run):
    _, exp, _ = tiny_run
    store = ExperimentStore.read(exp.out)
    key = sorted(store.cells)[0]
    cell = store.cells[key]
    store.cells[key] = dataclasses.replace(
        cell, provenance=dataclasses.replace(cell.provenance, source_hash="0" * 16)
    )
    with pytest.raises(PMRFusionError, match="would pool cells of 2 code versions"):
        render_page(exp, store)
    pooled = dataclasses.replace(exp, pool_code_versions="only docs changed")
    assert "**pools code versions**: only docs changed" in render_page(pooled, store)


def test_page_table_is_the_mean_and_sample_std_of_the_records(tiny_run):
    _, exp, store = tiny_run
    page = render_page(exp, store)
    recs = [r for r in store.all_records() if r["method"] == "late"]
    clean = np.array(list(per_seed(recs, "clean", "accuracy").values()))
    assert clean.size == 2
    row = next(line for line in page.splitlines() if line.startswith("| hw | late |"))
    assert row.split("|")[3].strip() == f"{clean.mean():.4f} ± {clean.std(ddof=1):.4f}"


def test_bad_experiment_files_fail_in_one_line(tmp_path):
    bad = {
        'name = "x"\n[[grid]]\nid = "g"\ndataset = "handwritten"\nmethods = ["nope"]\n': "unknown method",
        'name = "x"\ncolour = 1\n[[grid]]\nid = "g"\ndataset = "d"\nmethods = ["concat"]\n': "unknown key",
        'name = "x"\n[[grid]]\nid = "g"\nmethods = ["concat"]\n': "lacks 'dataset'",
        'name = "../x"\n[[grid]]\nid = "g"\ndataset = "d"\nmethods = ["concat"]\n': "experiment name",
        'name = "x"\n[[grid]]\nid = "g"\ndataset = "d"\nmethods = ["concat"]\ntrain = { epoch = 3 }\n': (
            "epoch"
        ),
        'name = "x"\n[[grid]]\nid = "g"\ndataset = "d"\nmethods = "concat"\n': "list of names",
    }
    table = '\n[[table]]\ntitle = "t"\nmetric = "accuracy"\ncolumns = ["salt_pepper"]\n'
    grid = 'name = "x"\n[[grid]]\nid = "g"\ndataset = "d"\nmethods = ["concat"]\n'
    bad[grid + table] = "matches no protocol"
    for text, message in bad.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(PMRFusionError, match=message):
            load_experiment(path)


# --------------------------------------------------------------------------- verdicts


def test_paired_interval_is_students_t_on_the_differences():
    a = np.array([0.80, 0.82, 0.79, 0.85, 0.81])
    b = np.array([0.78, 0.80, 0.80, 0.81, 0.79])
    d = a - b
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    r = paired_difference(a, b)
    assert r.n == 5
    assert r.mean_difference == pytest.approx(d.mean())
    assert (r.ci_low, r.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert r.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_difference(a[:1], b[:1]).ci_high == math.inf


def _records(method: str, values: list[float], preserve: tuple[float, float] | None = None) -> list[dict]:
    out = []
    for seed, v in enumerate(values):
        out.append({"grid": "g", "method": method, "protocol": "clean", "condition": "clean",
                    "present": ["a", "b"], "seed": seed, "metric": "accuracy", "value": v})  # fmt: skip
        if preserve is not None:
            for suffix, value in zip(("@first", "@best"), preserve, strict=True):
                out.append({"grid": "g", "method": method, "protocol": "training", "condition": "train",
                            "present": ["a", "b"], "seed": seed, "metric": "preserve" + suffix,
                            "value": value})  # fmt: skip
    return out


def _claim(**kw) -> Claim:
    base = dict(id="c", paper="P", text="t", experiment="e", grid="g", a="pmr", b="base", selector="clean",
                metric="accuracy", direction="greater")  # fmt: skip
    return Claim(**{**base, **kw})


def test_verdicts_follow_the_interval():
    base = _records("base", [0.70, 0.72, 0.71, 0.69, 0.70])
    better = _records("pmr", [0.75, 0.78, 0.76, 0.74, 0.76])
    worse = _records("pmr", [0.65, 0.66, 0.66, 0.63, 0.64])
    noisy = _records("pmr", [0.75, 0.66, 0.72, 0.70, 0.68])
    assert judge(_claim(), base + better).verdict == "holds"
    assert judge(_claim(), base + worse).verdict == "fails"
    assert judge(_claim(), base + noisy).verdict == "inconclusive"
    assert judge(_claim(direction="less"), base + worse).verdict == "holds"
    assert judge(_claim(b="nobody"), base + better).verdict == "not run"
    assert judge(_claim(), base[:1] + better[:1]).verdict == "too few seeds"


def test_a_mechanism_that_did_not_engage_gives_no_verdict():
    base = _records("base", [0.70, 0.72, 0.71, 0.69, 0.70])
    falls = _records("pmr", [0.75, 0.78, 0.76, 0.74, 0.76], preserve=(2.0, 1.0))
    rises = _records("pmr", [0.75, 0.78, 0.76, 0.74, 0.76], preserve=(1.0, 2.0))
    claim = _claim(engaged_method="pmr", engaged_metric="preserve")
    assert judge(claim, base + falls).verdict == "holds"
    v = judge(claim, base + rises)
    assert v.verdict == "not engaged" and "0 of 5" in v.note


def test_claims_file_is_checked(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text('[[claim]]\nid = "x"\npaper = "P"\ntext = "t"\nexperiment = "e"\ngrid = "g"\na = "m"\n'
                    'b = "n"\nselector = "clean"\nmetric = "accuracy"\ndirection = "bigger"\n')  # fmt: skip
    with pytest.raises(PMRFusionError, match="direction must be one of"):
        load_claims(path)


def test_selectors_average_the_conditions_they_name():
    recs = []
    for cond, present, value in (
        ("missing:-a", ["b", "c"], 0.6),
        ("missing:-b", ["a", "c"], 0.8),
        ("missing:+a", ["a"], 0.3),
        ("gaussian:5", ["a", "b", "c"], 0.9),
        ("gaussian:10", ["a", "b", "c"], 0.7),
        ("clean", ["a", "b", "c"], 1.0),
    ):
        recs.append({"protocol": cond.split(":")[0], "condition": cond, "present": present, "seed": 0,
                     "metric": "accuracy", "value": value})  # fmt: skip
    assert per_seed(recs, "leave-one-out", "accuracy") == {0: pytest.approx(0.7)}
    assert per_seed(recs, "keep-one", "accuracy") == {0: pytest.approx(0.3)}
    assert per_seed(recs, "gaussian", "accuracy") == {0: pytest.approx(0.8)}
    assert per_seed(recs, "gaussian:10", "accuracy") == {0: pytest.approx(0.7)}
    with pytest.raises(PMRFusionError, match="matches no condition"):
        per_seed(recs, "salt", "accuracy")


def test_cli_run_writes_the_page_and_refuses_a_second_run(tmp_path):
    path = write_experiment(tmp_path)
    cmd = [sys.executable, "-m", "pmrfusion", "run", str(path), "--grids", "hw"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "| hw | concat |" in (tmp_path / "out" / "README.md").read_text()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2 and second.stderr.startswith("error: ") and "--resume" in second.stderr
    page = subprocess.run([*cmd, "--page-only"], capture_output=True, text=True, timeout=300)
    assert page.returncode == 0, page.stderr


EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_every_committed_experiment_and_claim_is_well_formed():
    files = sorted(EXPERIMENTS.glob("*.toml"))
    experiments = {p.stem: load_experiment(p) for p in files if p.name not in CLAIMS_FILES}
    assert {"bench", "suite", "avmnist", "mosi"} <= set(experiments)
    for name, exp in experiments.items():
        assert exp.name == name, f"{name}.toml names itself '{exp.name}'"
        assert exp.out.as_posix() == f"results/{name}", f"{name}.toml writes to {exp.out}"
    claims = [c for name in CLAIMS_FILES for c in load_claims(EXPERIMENTS / name)]
    assert any(c.experiment == "pmr-optimizer" for c in claims), "the optimizer decision is a claims row"
    for claim in claims:
        exp = experiments[claim.experiment]
        grid = exp.grid(claim.grid)
        for method in (claim.a, claim.b, claim.engaged_method or claim.a):
            assert method in grid.spec.methods, (
                f"claim {claim.id}: {method} is not run in {exp.name}/{grid.id}"
            )


def test_committed_benchmarks_page_is_regenerated_from_the_records(monkeypatch):
    """`make benchmarks` output equals the committed BENCHMARKS.md (regenerate it after a run)."""
    from pmrfusion.bench.experiment_page import benchmarks_page

    root = EXPERIMENTS.parent
    monkeypatch.chdir(root)
    makefile = (root / "Makefile").read_text()
    superseded = next(line for line in makefile.splitlines() if line.startswith("SUPERSEDED :="))
    pages = [Path(p) for p in superseded.split(":=", 1)[1].split()]
    assert benchmarks_page(Path("experiments"), pages) == (root / "BENCHMARKS.md").read_text()


def test_baseline_cells_are_remade_with_a_rerun_cell_of_their_seed(tiny_run):
    """A task's baseline records (retrieval's CCA) come with the cells of their seed: when a cell of
    that seed runs again (code or settings changed), the stored baseline is out of date too."""
    _, exp, _ = tiny_run
    store = ExperimentStore.read(exp.out)
    some = next(iter(store.cells.values()))
    for seed in (0, 1):
        store.cells[("hw", "handwritten", "baseline:cca", seed)] = some
    grid = exp.grid("hw")
    done = {("concat", 0), ("late", 0), ("concat", 1)}  # late seed 1 runs again
    plan = experiment_run.CellPlan(grid, None, "", {}, done)
    stale = experiment_run.stale_cells(exp, store, [plan])
    assert ("hw", "handwritten", "baseline:cca", 1) in stale
    assert ("hw", "handwritten", "baseline:cca", 0) not in stale
    assert ("hw", "handwritten", "late", 1) in stale
