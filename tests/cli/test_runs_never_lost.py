"""`bench --out`: results already there are refused unless --resume / --overwrite; every finished
cell is on disk as soon as it is scored; a resumed run gives the same bytes as a fresh one."""

import json

import pytest

from pmrfusion.bench import bench_run
from pmrfusion.bench.bench_run import run_bench
from pmrfusion.bench.runner import RunSpec
from pmrfusion.data.loaders import load_dataset
from pmrfusion.errors import PMRFusionError
from pmrfusion.train.trainer import TrainConfig
from tests.cli.cli_helpers import assert_one_error, run_main

BENCH = ["bench", "--methods", "concat,late", "--seeds", "2", "--epochs", "1", "--protocols", "clean",
         "--quiet"]  # fmt: skip


def _spec(methods=("concat", "late"), seeds=(0, 1)):
    return RunSpec(list(methods), ["clean"], list(seeds), train=TrainConfig(epochs=1, quiet=True))


def test_existing_results_are_refused_then_resumed_cell_by_cell_with_identical_records(tmp_path, capsys):
    out = tmp_path / "run"
    code, err = run_main([*BENCH, "--out", str(out)], capsys)
    assert code == 0, err
    fresh = (out / "results.json").read_bytes()
    assert sorted(p.name for p in (out / "cells").glob("*.json")) == [
        f"handwritten__{m}__seed{s}.json" for m in ("concat", "late") for s in (0, 1)
    ]
    code, err = run_main([*BENCH, "--out", str(out)], capsys)
    assert_one_error(code, err, "already holds results: pass --resume")
    assert (out / "results.json").read_bytes() == fresh
    code, err = run_main([*BENCH, "--out", str(out), "--resume", "--overwrite"], capsys)
    assert_one_error(code, err, "--resume and --overwrite exclude each other")
    # drop one cell: --resume runs only that one, the other three are kept, the bytes are the same
    (out / "cells" / "handwritten__late__seed1.json").unlink()
    (out / "results.json").unlink()
    ran = []
    data = load_dataset("handwritten")
    records, kept = run_bench(data, _spec(), out, resume=True, on_cell=lambda m, s, t: ran.append((m, s)))
    assert ran == [("late", 1)] and kept == 3
    assert (out / "results.json").read_bytes() == fresh
    # nothing left to run: no training at all
    records, kept = run_bench(data, _spec(), out, resume=True, on_cell=lambda m, s, t: ran.append((m, s)))
    assert ran == [("late", 1)] and kept == 4
    # other settings are not mixed into the folder
    other = RunSpec(["concat"], ["clean"], [0], train=TrainConfig(epochs=2, quiet=True))
    with pytest.raises(PMRFusionError, match="cells made with other settings"):
        run_bench(data, other, out, resume=True)
    one = [*BENCH, "--out", str(out), "--overwrite", "--methods", "concat", "--seeds", "1"]
    code, err = run_main(one, capsys)
    assert code == 0, err
    assert [p.name for p in (out / "cells").glob("*.json")] == ["handwritten__concat__seed0.json"]


def test_an_interruption_after_the_first_cell_keeps_that_cell(tmp_path, monkeypatch):
    out = tmp_path / "run"
    data = load_dataset("handwritten")
    real = bench_run.store.store_cell

    def store_then_stop(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_run.store, "store_cell", store_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_bench(data, _spec(), out)
    cells = list((out / "cells").glob("*.json"))
    assert [p.name for p in cells] == ["handwritten__concat__seed0.json"]
    assert json.loads(cells[0].read_text())["records"][0]["method"] == "concat"
    assert not (out / "results.json").exists()
    monkeypatch.setattr(bench_run.store, "store_cell", real)
    ran = []
    run_bench(data, _spec(), out, resume=True, on_cell=lambda m, s, t: ran.append((m, s)))
    assert ran == [("late", 0), ("concat", 1), ("late", 1)]
