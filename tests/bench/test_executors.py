"""Cell executors: local 1 vs 2 processes give the same records; the cost order; one-line errors."""

import pytest
import torch
from typer.testing import CliRunner

from pmrfusion.bench.cell_cost import cell_cost, method_weight
from pmrfusion.bench.executors import LocalExecutor, cell_executor
from pmrfusion.bench.experiment import load_experiment
from pmrfusion.bench.experiment_run import run_experiment
from pmrfusion.bench.experiment_store import RECORDS_FILE
from pmrfusion.bench.suite import SuiteSpec, run_suite
from pmrfusion.cli import app
from pmrfusion.errors import PMRFusionError
from pmrfusion.train.trainer import TrainConfig


def test_local_executor_one_and_two_processes_give_identical_records(tmp_path):
    spec = SuiteSpec(datasets=["handwritten"], methods=["concat", "late"], seeds=[0, 1],
                     protocols=["clean"], train=TrainConfig(epochs=2, batch_size=128))  # fmt: skip
    order: list[str] = []
    with LocalExecutor(1) as one:
        run_suite(spec, tmp_path / "one", executor=one, on_cell=lambda c, *_: order.append(c.method))
    with LocalExecutor(2) as two:
        res = run_suite(spec, tmp_path / "two", executor=two)
    assert res.ran == 4
    one, two = ((tmp_path / k / "results.json").read_bytes() for k in ("one", "two"))
    assert one == two
    assert order == ["concat", "concat", "late", "late"]  # equal cost: the spec's order is kept


def test_cell_cost_is_family_weight_times_size():
    assert method_weight("concat") == 1.0
    assert method_weight("perceiver") == 4.0
    assert method_weight("sg-perceiver[k=2]") == 8.0
    assert method_weight("iid-q") == 2.0
    assert cell_cost("rg-moe", 100, {"a": 3, "b": 7}) == 6.0 * 100 * 10


def test_map_unordered_in_process_yields_each_item_with_its_result():
    with LocalExecutor(1) as ex:
        assert list(ex.map_unordered(pow, [2, 3], 2)) == [(2, 4), (3, 9)]


@pytest.mark.parametrize(
    ("args", "message"),
    [(("nope", 1, None), "--executor 'nope'"),
     (("local", 1, "tcp://x:1"), "--scheduler needs --executor dask"),
     (("local", 0, None), "--jobs must be >= 1")],
)  # fmt: skip
def test_bad_executor_settings_are_one_line(args, message):
    with pytest.raises(PMRFusionError, match=message):
        cell_executor(*args)


def test_cli_refuses_a_scheduler_without_dask(tmp_path):
    args = ["suite", "--datasets", "handwritten", "--methods", "concat", "--seeds", "1",
            "--out", str(tmp_path / "s"), "--scheduler", "tcp://127.0.0.1:1"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code != 0
    assert str(res.exception) == "--scheduler needs --executor dask"
    assert not (tmp_path / "s").exists()


EXPERIMENT = """
name = "tiny"
title = "Tiny"
out = "{out}"

[defaults]
seeds = 2
protocols = ["clean"]
train = {{ epochs = 1, patience = 2 }}

[[grid]]
id = "hw"
dataset = "handwritten"
methods = ["concat", "late"]
"""


def test_experiment_on_two_local_processes_matches_one_thread_in_process(tmp_path):
    runs = {}
    for name, ex in (("serial", LocalExecutor(1)), ("pool", LocalExecutor(2))):
        path = tmp_path / f"{name}.toml"
        path.write_text(EXPERIMENT.format(out=(tmp_path / name).as_posix()))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # what each worker process runs with
        try:
            store = run_experiment(load_experiment(path), executor=ex)
        finally:
            torch.set_num_threads(threads)
        assert len(store.cells) == 4
        runs[name] = (tmp_path / name / RECORDS_FILE).read_bytes()
    assert runs["serial"] == runs["pool"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_gpu_check_refuses_in_one_line_without_cuda(tmp_path):
    res = CliRunner().invoke(app, ["gpu-check", "--out", str(tmp_path / "g")])
    assert res.exit_code != 0
    assert str(res.exception) == "`gpu-check` needs CUDA, and torch sees no CUDA device on this machine"
    assert not (tmp_path / "g").exists()


def test_scaling_study_writes_its_table_and_refuses_to_overwrite(tmp_path):
    from pmrfusion.analysis.scaling import scaling_study

    twice = [("local", 1), ("local", 1)]
    rows = scaling_study(tmp_path, methods=["concat"], seeds=1, epochs=1, configs=twice)
    assert [(r.executor, r.workers, r.cells, r.identical) for r in rows] == [("local", 1, 1, True)] * 2
    csv_lines = (tmp_path / "scaling.csv").read_text().splitlines()
    assert csv_lines[0] == "executor,workers,cells,seconds,cells_per_min,identical_records"
    assert len(csv_lines) == 3 and "| local | 1 | 1 |" in (tmp_path / "README.md").read_text()
    with pytest.raises(PMRFusionError, match="already holds README.md, scaling.csv"):
        scaling_study(tmp_path, methods=["concat"], seeds=1, epochs=1, configs=[("local", 1)])
