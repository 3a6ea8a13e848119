"""The records module: typed Record, lossless CSV round trip, durable checksummed cells, the suite lock,
umask, and names from results content never used as paths."""

import json
import os
import threading
import time

import pytest

from pmrfusion.bench import records as R
from pmrfusion.bench.report import write_report
from pmrfusion.bench.suite import SuiteSpec, cell_path, run_suite
from pmrfusion.errors import PMRFusionError
from pmrfusion.paths import atomic_write_text
from pmrfusion.train.trainer import TrainConfig


def _spec(**kw):
    args = dict(datasets=["handwritten"], methods=["concat"], seeds=[0, 1], protocols=["clean", "missing"],
                train=TrainConfig(epochs=1, batch_size=256))  # fmt: skip
    args.update(kw)
    return SuiteSpec(**args)


def test_record_round_trip_and_csv_is_lossless(tmp_path):
    recs = [
        {"dataset": "d", "method": "m", "protocol": "missing", "condition": "missing:a",
         "present": ["b", "c"], "seed": 3, "metric": "accuracy", "value": 0.1 + 0.2},  # fmt: skip
        {"dataset": "d", "method": "m", "protocol": "clean", "condition": "clean", "present": ["a", "b", "c"],
         "seed": 0, "metric": "f1", "value": 1 / 3},  # fmt: skip
    ]
    assert [R.Record.from_dict(r).to_dict() for r in recs] == recs
    R.write_results(tmp_path, recs)
    (tmp_path / "results.json").unlink()
    assert R.read_records(tmp_path) == recs  # the CSV alone gives back every value bit for bit
    with pytest.raises(PMRFusionError, match="lacks"):
        R.Record.from_dict({"dataset": "d"})


def test_condition_parser_and_the_one_formatter():
    assert R.parse_condition("gaussian:5") == ("gaussian", 5.0)
    assert R.parse_condition("missing:img") == ("missing", None)
    assert R.parse_condition("clean") == ("clean", None)
    assert R.format_mean_std_worst([0.5, 0.7]) == "0.6000 ± 0.1414 (0.5000)"
    assert R.format_mean_std_worst([0.5, 0.7], 100.0, digits=2) == "60.00 ± 14.14 (50.00)"
    assert R.format_mean_std_worst([], empty="–") == "–"


def test_bad_or_truncated_cell_is_recomputed_not_dropped(tmp_path):
    spec = _spec()
    first = run_suite(spec, tmp_path)
    assert first.ran == 2
    cells = spec.cells()
    good = json.loads(cell_path(tmp_path, cells[0]).read_text())
    assert "sha256" in good
    # tamper with one value (checksum no longer matches) and truncate the other file
    good["records"][0]["value"] = 0.0
    cell_path(tmp_path, cells[0]).write_text(json.dumps(good))
    text = cell_path(tmp_path, cells[1]).read_text()
    cell_path(tmp_path, cells[1]).write_text(text[: len(text) // 2])
    assert R.read_cells(tmp_path) == []
    again = run_suite(spec, tmp_path)
    assert again.ran == 2 and again.reused == 0
    assert again.records == first.records  # recomputed to the same values, nothing dropped


def test_settings_claim_is_locked_and_refuses_other_settings(tmp_path):
    s1 = _spec().settings()
    s2 = _spec(train=TrainConfig(epochs=2, batch_size=256)).settings()
    R.claim_suite(tmp_path, s1, ["a.json"])
    with pytest.raises(PMRFusionError, match="other settings"):
        R.claim_suite(tmp_path, s2, ["a.json"])
    # a second claimant waits while the lock is held
    order = []
    with R.suite_lock(tmp_path):
        t = threading.Thread(target=lambda: (R.claim_suite(tmp_path, s1, ["b.json"]), order.append("claim")))
        t.start()
        time.sleep(0.3)
        order.append("release")
    t.join(5)
    assert order == ["release", "claim"]
    assert json.loads((tmp_path / "suite.json").read_text())["cells"] == ["a.json", "b.json"]


def test_writes_respect_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "x.txt", "hi\n")  # every results file goes through it
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o640
    assert not list(tmp_path.glob(".*tmp"))


def test_crafted_dataset_name_cannot_write_outside_the_folder(tmp_path):
    folder = tmp_path / "res"
    recs = [
        {"dataset": "../../evil", "method": m, "protocol": p, "condition": c, "present": ["a", "b"],
         "seed": s, "metric": "accuracy", "value": 0.5 + 0.1 * s}  # fmt: skip
        for m in ("x", "y")
        for s in (0, 1)
        for p, c in (("clean", "clean"), ("gaussian", "gaussian:0"), ("gaussian", "gaussian:5"))
    ]
    R.write_results(folder, recs)
    write_report(folder)
    outside = {p for p in tmp_path.rglob("*") if folder not in p.parents and p != folder}
    assert outside == set()
    assert R.safe_component("../../evil") == "evil"


def test_one_seed_has_no_spread_and_says_n_1():
    from pmrfusion.bench.records import format_mean_std_worst, summarise, summary_grid

    assert format_mean_std_worst([0.5]) == "0.5000 (n = 1)"
    assert format_mean_std_worst([0.5, 0.7]).startswith("0.6000 ± 0.1414")
    rec = {"dataset": "d", "method": "m", "protocol": "clean", "condition": "clean", "present": ["a"],
           "seed": 0, "metric": "accuracy", "value": 0.25}  # fmt: skip
    _, rows = summary_grid(summarise([rec]))
    assert rows[0][2] == ["0.2500 (n = 1)"]
