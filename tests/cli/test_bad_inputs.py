"""Bad inputs through the CLI: exit 2, one `error:` line first on stderr, no traceback, nothing under --out.

Most cases call `pmrfusion.cli.main` in-process (torch is imported once); a handful run the real
`python -m pmrfusion` in a subprocess to check the whole path, stderr order included.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_error, run_main, subprocess_run

import pmrfusion

SRC = str(Path(pmrfusion.__file__).resolve().parents[1])


def tiny(tmp_path: Path, name: str = "d.npz", **over) -> Path:
    rng = np.random.default_rng(0)
    n = 40
    arrays = {
        "x_a": rng.normal(size=(n, 3)),
        "x_b": rng.normal(size=(n, 4)),
        "y": np.arange(n) % 2,
        "train_idx": np.arange(0, 30),
        "test_idx": np.arange(30, 40),
    }
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


OPTION_CASES = [
    (["train", "--set", "n=abc"], "expected an integer"),
    (["train", "--set", "n=2.5"], "expected an integer"),
    (["train", "--set", "dropout=2.0"], "out of range"),
    (["train", "--set", "lam=nan"], "finite"),
    (["train", "--set", "n=100000000"], "parameters"),
    (["train", "--lr", "nan"], "lr must be"),
    (["train", "--seed", "-1"], "seed must be"),
    (["train", "--seed", str(2**40)], "seed must be"),
    (["train", "--label-noise", "1.5"], "label_noise"),
    (["bench", "--set", "lamda=0.5"], "no selected method"),
    (["bench", "--methods", ","], "empty"),
    (["bench", "--protocols", ""], "empty"),
    (["bench", "--suite", "paper", "--set", "lamda=0.5"], "no selected method"),
    (["bench", "--suite", "paper", "--methods", ""], "empty"),
]


@pytest.mark.parametrize("argv, needle", OPTION_CASES)
def test_bad_options_are_one_line_before_work(tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    extra = ["--out", str(out)] if argv[0] == "bench" else []
    code, err = run_main([*argv, *extra, "--epochs", "1"], capsys)
    assert_one_error(code, err, needle)
    assert not out.exists()


# Every command: one bad input or two each (paths: {out} = --out, never created; {missing}).
COMMAND_CASES = [
    (["eval", "--load", "{missing}", "--protocols", ""], "empty"),
    (["eval", "--load", "{missing}", "--seed", "-1"], "seed must be"),
    (["suite", "paper", "--seeds", str(2**40), "--out", "{out}"], "exceed the largest seed"),
    (["suite", "paper", "--jobs", "0", "--out", "{out}"], "--jobs"),
    (["suite", "paper", "--methods", "concat", "--set", "n=2", "--out", "{out}"], "no selected method"),
    (["retrieval", "--objective", "nope", "--out", "{out}"], "objective"),
    (["retrieval", "--methods", "", "--out", "{out}"], "empty"),
    (["rcml", "--lr", "tmc", "--out", "{out}"], "method=rate"),
    (["rcml", "--lr", "nope=0.1", "--out", "{out}"], "not selected"),
    (["rcml", "--runs", "0", "--out", "{out}"], "runs must be"),
    (["rcml", "--summarize", "{missing}", "--out", "{out}"], "not found"),
    (["report", "{missing}"], "not found"),
    (["analyze-pmr", "gradcos", "--preservation", "nope", "--out", "{out}"], "preservation"),
    (["analyze-pmr", "cost", "--seeds", "0", "--out", "{out}"], "--seeds"),
    (["analyze-dynamic", "coherence", "--method", "qmf", "--out", "{out}"], "unknown method"),
    (["bench-dynamic", "--threads", "0", "--out", "{out}/page.md"], "--threads"),
    (["bench-pmr-family", "--only", "nope", "--raw", "{out}", "--out", "{out}/page.md"], "--only"),
    (["speed", "--threads", "0"], "--threads"),
    (["speed", "--kernel", "single,fast"], "unknown optimizer kernel 'fast'"),
    (["bench", "--optimizer-kernel", "fast", "--out", "{out}"], "unknown optimizer kernel 'fast'"),
    (["select-on-validation", "--seeds", "0"], "--seeds"),
    (["robustness-summary", "{missing}"], "not found"),
    (["train", "--epochs", "abc"], "Invalid value for '--epochs'"),  # usage errors: one line too
    (["datasets", "--data-root", "{missing}"], "does not exist"),
    (["no-such-command"], "No such command"),
]


@pytest.mark.parametrize("argv, needle", COMMAND_CASES)
def test_every_command_refuses_bad_input_before_work(tmp_path, capsys, argv, needle):
    out, missing = tmp_path / "out", tmp_path / "missing"
    code, err = run_main([a.format(out=out, missing=missing) for a in argv], capsys)
    assert_one_error(code, err, needle)
    assert not out.exists()


def test_output_paths_checked_before_work(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    (tmp_path / "dir").mkdir()
    for argv, needle in [
        (["bench", "--out", str(a_file)], "not a folder"),
        (["bench", "--out", str(a_file / "sub")], "is a file"),
        (["train", "--save", str(tmp_path / "dir"), "--epochs", "1"], "is a folder"),
    ]:
        code, err = run_main(argv, capsys)
        assert_one_error(code, err, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]
    assert not any((tmp_path / "dir").iterdir())


def test_unwritable_output_folder(tmp_path, capsys):
    if os.geteuid() == 0:
        # root writes anywhere: a path under /proc stands in (not writable, no space)
        target = Path("/proc/pmrfusion-out")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "out"
    code, err = run_main(["bench", "--out", str(target)], capsys)
    assert_one_error(code, err, "--out")
    assert not target.exists()


DATA_CASES = [
    (
        {
            "y": np.zeros(0),
            "x_a": np.zeros((0, 3)),
            "x_b": np.zeros((0, 4)),
            "train_idx": np.zeros(0, int),
            "test_idx": np.zeros(0, int),
        },
        "no samples",
    ),
    ({"train_idx": np.zeros(0, int)}, "train split is empty"),
    ({"test_idx": np.zeros(0, int)}, "test split is empty"),
    ({"test_idx": np.arange(25, 40)}, "share 5 rows"),
    ({"train_idx": np.array([0, 0, 1, 2])}, "more than once"),
    ({"x_a": np.ones((40, 3)) * 1j}, "complex"),
    ({"x_a": np.array([["u"] * 3] * 40)}, "string"),
    ({"num_classes": np.array([2, 3])}, "num_classes must be one integer"),
    ({"x_a": None, "x_a.b": np.zeros((40, 3))}, "modality name 'a.b'"),
    ({"x_a": None, "x_": np.zeros((40, 3))}, "modality name ''"),
    ({"x_a": None, "x_../x": np.zeros((40, 3))}, "not allowed"),
]


@pytest.mark.parametrize("over, needle", DATA_CASES)
def test_wrong_data_that_loads(tmp_path, capsys, over, needle):
    path = tiny(tmp_path, **over)
    out = tmp_path / "out"
    code, err = run_main(["bench", "--dataset", str(path), "--out", str(out), "--epochs", "1"], capsys)
    assert_one_error(code, err, needle)
    assert not out.exists()


def test_broken_npz_files(tmp_path, capsys):
    empty = tmp_path / "empty.npz"
    np.savez(empty)
    npy = tmp_path / "renamed.npz"
    np.save(tmp_path / "arr.npy", np.zeros(3))
    (tmp_path / "arr.npy").rename(npy)
    junk = tmp_path / "junk.npz"
    with zipfile.ZipFile(junk, "w") as z:
        z.writestr("x_a.npy", b"not an array")
        z.writestr("y.npy", b"nor this")
    for path, needle in [(empty, "no arrays"), (npy, "not a zip"), (junk, "cannot read")]:
        code, err = run_main(["train", "--dataset", str(path), "--epochs", "1"], capsys)
        assert_one_error(code, err, needle)


def test_non_contiguous_labels_are_remapped_with_a_note(tmp_path):
    from pmrfusion.data.loaders import load_dataset

    data = load_dataset(tiny(tmp_path, y=np.array([3, 7, 9, 7]).repeat(10)))
    assert data.num_classes == 3 and sorted(np.unique(data.labels)) == [0, 1, 2]
    assert any("remapped" in n for n in data.notes)


def test_one_based_mat_split_indices_are_shifted(tmp_path):
    import scipy.io as sio

    from pmrfusion.data.loaders import load_dataset

    rng = np.random.default_rng(0)
    views = np.empty((1, 2), dtype=object)
    views[0, 0], views[0, 1] = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    sio.savemat(
        tmp_path / "m.mat",
        {
            "X": views,
            "Y": (np.arange(20) % 2)[:, None],
            "train_idx": np.arange(1, 16.0),
            "test_idx": np.arange(16, 21.0),
        },
    )
    data = load_dataset(tmp_path / "m.mat")
    assert data.split("test").tolist() == list(range(15, 20))
    assert any("1-based" in n for n in data.notes)


def test_eval_refuses_a_dataset_with_other_classes(tmp_path, capsys):
    path = tiny(tmp_path)
    ckpt = tmp_path / "m.pt"
    code, err = run_main(
        [
            "train",
            "--dataset",
            str(path),
            "--method",
            "concat",
            "--epochs",
            "1",
            "--save",
            str(ckpt),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    three = tiny(tmp_path, "three.npz", y=np.arange(40) % 3)
    code, err = run_main(["eval", "--load", str(ckpt), "--dataset", str(three)], capsys)
    assert_one_error(code, err, "3 classes")
    other = tiny(tmp_path, "other.npz", x_b=np.zeros((40, 5)))
    code, err = run_main(["eval", "--load", str(ckpt), "--dataset", str(other)], capsys)
    assert_one_error(code, err, "dims")


def test_error_line_is_first_on_stderr_in_a_real_process(tmp_path):
    # integer-valued float labels with a NaN feature: the error comes first even with -W always
    path = tiny(tmp_path, x_b=np.where(np.eye(40, 4) > 0, np.nan, 1.0))
    out = tmp_path / "out"
    r = subprocess_run(
        ["bench", "--dataset", str(path), "--out", str(out), "--set", "n=abc", "--methods", "sg-concat"],
        tmp_path,
    )
    assert r.returncode == 2
    assert r.stderr.splitlines()[0].startswith("error:") and "Traceback" not in r.stderr
    assert not out.exists()


def interrupt_after_first_line(args: list[str], cwd: Path) -> tuple[int, str]:
    """Start `pmrfusion ARGS` in its own process group, send SIGINT to the whole group (as a
    terminal's Ctrl-C does) once it has printed a line; (exit code, stderr). Never hangs."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmrfusion", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
        start_new_session=True,
    )  # fmt: skip
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no output within 120 s"
        proc.stdout.readline()
        time.sleep(1.0)  # into the work
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    return proc.returncode, err


def test_ctrl_c_prints_one_line(tmp_path):
    out = tmp_path / "o"
    args = ["bench", "--out", str(out), "--epochs", "200", "--quiet"]
    code, err = interrupt_after_first_line(args, tmp_path)
    assert code == 130, err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("interrupted:"), err
    assert "every finished cell is kept" in err and "--resume" in err
    assert not (out / "results.json").exists()  # results are written whole, at the end; cells as they finish


def test_ctrl_c_in_a_suite_with_workers_keeps_cells(tmp_path):
    out = tmp_path / "s"
    args = ["suite", "paper", "--datasets", "handwritten", "--methods", "concat,late", "--seeds", "2",
            "--protocols", "clean", "--epochs", "300", "--jobs", "2", "--quiet",
            "--out", str(out)]  # fmt: skip
    code, err = interrupt_after_first_line(args, tmp_path)
    assert code == 130, err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("interrupted:"), err
    assert "cells/" in err and "Traceback" not in err
    assert not list(out.rglob("*.tmp"))  # nothing half-written


FEATURE_ONLY_COMMANDS = [
    ["suite", "paper", "--methods", "concat", "--seeds", "1", "--datasets", "{m}", "--out", "{out}"],
    ["rcml", "--datasets", "{m}", "--methods", "concat", "--runs", "1", "--out", "{out}"],
    ["retrieval", "--dataset", "{m}", "--methods", "concat", "--seeds", "1", "--out", "{out}"],
    ["analyze-pmr", "gradcos", "--dataset", "{m}", "--out", "{out}"],
    ["analyze-dynamic", "weights", "--dataset", "{m}", "--out", "{out}"],
    ["bench-dynamic", "--datasets", "{m}", "--out", "{out}/page.md"],
    ["select-on-validation", "--dataset", "{m}"],
    ["speed", "--dataset", "{m}"],
]


@pytest.mark.parametrize("argv", FEATURE_ONLY_COMMANDS, ids=lambda a: a[0])
def test_feature_only_commands_refuse_a_raw_manifest(tmp_path, capsys, argv):
    """A manifest of raw files goes through bench/train/eval; every other command says so in one line."""
    rows = ["vec,img,label"]
    for i in range(12):
        np.save(tmp_path / f"v{i}.npy", np.full(3, i, np.float32))
        np.save(tmp_path / f"i{i}.npy", np.zeros((1, 4, 4), np.float32))
        rows.append(f"v{i}.npy,i{i}.npy,{i % 2}")
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    code, err = run_main([a.format(m=manifest, out=out) for a in argv], capsys)
    assert_one_error(code, err, "holds raw inputs")
    assert argv[0] in err.splitlines()[0]
    assert not out.exists()
