"""Issue 23, suite: a cell file is reused only when checksum, name and settings match; a damaged
folder, a full disk, duplicated names or a huge seed count give one `error:` line; stale temporary
files of a killed run are removed.

Each case goes through the CLI: one per class in a real subprocess (`cli_subprocess`), the
variants in-process (`run_main`, cheaper: torch is imported once). Folders are copies of one tiny
finished suite (handwritten, concat, 2 seeds, 1 epoch, clean).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import assert_one_error
from cli_helpers import run_main as _run_main

import pmrfusion

SRC = str(Path(pmrfusion.__file__).resolve().parents[1])
SUITE = ["suite", "paper", "--datasets", "handwritten", "--methods", "concat", "--seeds", "2",
         "--epochs", "1", "--protocols", "clean", "--quiet"]  # fmt: skip
SEED0, SEED1 = "handwritten__concat__seed0.json", "handwritten__concat__seed1.json"


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def cli_subprocess(
    argv: list[str], cwd: Path, code: str | None = None, timeout: float = 180
) -> tuple[int, str]:
    """(exit code, stderr + stdout) of `python -m pmrfusion ARGV`, or of `python -c CODE ARGV`."""
    cmd = [sys.executable, "-m", "pmrfusion"] if code is None else [sys.executable, "-c", code]
    proc = subprocess.run(
        [*cmd, *argv], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout
    )
    return proc.returncode, proc.stderr + proc.stdout


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, str]:
    """(exit code, stderr + stdout) of `pmrfusion ARGV` in this process."""
    return _run_main(argv, capsys, with_stdout=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (lock files aside) and its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny suite folder (read-only for the tests: copy it)."""
    out = tmp_path_factory.mktemp("suite") / "done"
    assert run_main([*SUITE, "--out", str(out)])[0] == 0
    return out


def copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "s"
    shutil.copytree(finished, out)
    return out


def _rewrite(path: Path, change: Callable[[dict], object]) -> None:
    """Change a cell's body and give it a valid checksum again (a well-formed but wrong cell)."""
    body = json.loads(path.read_text())
    body.pop("sha256")
    change(body)
    body["sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    path.write_text(json.dumps(body))


def _no_checksum(out: Path) -> None:
    body = json.loads((out / "cells" / SEED1).read_text())
    del body["sha256"]
    (out / "cells" / SEED1).write_text(json.dumps(body))


def _copied_under_other_name(out: Path) -> None:
    shutil.copy(out / "cells" / SEED0, out / "cells" / SEED1)


def _seed_three(out: Path) -> None:
    _rewrite(out / "cells" / SEED1, lambda b: b.update(seed="three"))


def _other_settings(out: Path) -> None:
    _rewrite(out / "cells" / SEED1, lambda b: b.update(settings_sha256="0" * 64))


CELL_CASES = [
    (_no_checksum, "no checksum"),
    (_copied_under_other_name, "holds handwritten/concat/seed 0"),
    (_seed_three, "seed is not an integer"),
    (_other_settings, "made with other settings"),
]


@pytest.mark.parametrize("damage, reason", CELL_CASES, ids=[c[1] for c in CELL_CASES])
def test_a_cell_not_accepted_is_recomputed_and_said(finished, tmp_path, capsys, damage, reason):
    out = copy(finished, tmp_path)
    damage(out)
    code, text = run_main([*SUITE, "--out", str(out)], capsys)
    assert code == 0, text
    assert f"cells/{SEED1} is recomputed: {reason}" in " ".join(text.split()), text
    assert "1 cells run" in text and "1 reused" in text, text
    assert (out / "results.json").read_bytes() == (finished / "results.json").read_bytes()
    cell = json.loads((out / "cells" / SEED1).read_text())
    assert cell["records"] == json.loads((finished / "cells" / SEED1).read_text())["records"]


def test_a_cell_of_a_run_with_other_settings_is_recomputed_in_a_subprocess(finished, tmp_path, capsys):
    other = tmp_path / "other"
    code, text = run_main([*SUITE, "--lr", "0.05", "--out", str(other)], capsys)
    assert code == 0, text
    out = copy(finished, tmp_path)
    shutil.copy(other / "cells" / SEED1, out / "cells" / SEED1)  # valid checksum, other settings
    code, text = cli_subprocess([*SUITE, "--out", str(out)], tmp_path)
    assert code == 0 and "Traceback" not in text, text
    assert f"cells/{SEED1} is recomputed: made with other settings" in " ".join(text.split()), text
    assert "1 cells run" in text, text
    assert (out / "results.json").read_bytes() == (finished / "results.json").read_bytes()


def test_a_stray_cell_file_is_left_out_of_the_results(finished, tmp_path, capsys):
    out = copy(finished, tmp_path)
    shutil.copy(out / "cells" / SEED0, out / "cells" / "handwritten__concat__seed7.json")
    code, text = run_main([*SUITE, "--out", str(out)], capsys)
    assert code == 0, text
    assert "0 cells run, 2 reused" in text and "left out of the results" in text, text
    assert (out / "results.json").read_bytes() == (finished / "results.json").read_bytes()  # no cell twice


def _suite_json(content: object) -> Callable[[Path], object]:
    return lambda out: (out / "suite.json").write_text(json.dumps(content))


def _settings_null(out: Path) -> None:
    (out / "suite.json").write_text(json.dumps({"settings": None, "cells": []}))


def _cells_a_string(out: Path) -> None:
    old = json.loads((out / "suite.json").read_text())
    (out / "suite.json").write_text(json.dumps({**old, "cells": "abc"}))


def _folder_at_a_cell(out: Path) -> None:
    (out / "cells" / SEED1).unlink()
    (out / "cells" / SEED1).mkdir()


def _cells_a_file(out: Path) -> None:
    shutil.rmtree(out / "cells")
    (out / "cells").write_text("not a folder\n")


FOLDER_CASES = [
    (_suite_json([1, 2]), "suite.json is damaged: a JSON list"),
    (_settings_null, "suite.json is damaged: its settings are not an object"),
    (_cells_a_string, "suite.json is damaged: its cells are not a list"),
    (_folder_at_a_cell, f"cells/{SEED1} is a folder"),
    (_cells_a_file, "cells is a file"),
]


@pytest.mark.parametrize("damage, needle", FOLDER_CASES, ids=[c[1] for c in FOLDER_CASES])
def test_a_damaged_suite_folder_is_one_error_and_left_as_it_was(finished, tmp_path, capsys, damage, needle):
    out = copy(finished, tmp_path)
    damage(out)
    before = snapshot(out)
    code, text = run_main([*SUITE, "--out", str(out)], capsys)
    assert_one_error(code, text, needle)
    assert snapshot(out) == before


def test_a_damaged_suite_json_is_one_error_in_a_subprocess(finished, tmp_path):
    out = copy(finished, tmp_path)
    (out / "suite.json").write_text("[]\n")
    before = snapshot(out)
    code, text = cli_subprocess([*SUITE, "--out", str(out)], tmp_path)
    assert_one_error(code, text, f"{out}/suite.json is damaged")
    assert snapshot(out) == before


# The CLI with os.fsync failing as on a full disk when the second cell is written.
DISK_FULL = """
import errno, os, sys
real = os.fsync
def fsync(fd):
    name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    if name.startswith(".handwritten__concat__seed1.json.") and name.endswith(".tmp"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(fd)
os.fsync = fsync
sys.argv = ["pmrfusion", *sys.argv[1:]]
from pmrfusion.cli import main
main()
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_full_disk_mid_suite_is_one_error_and_the_rerun_completes(finished, tmp_path, capsys):
    out = tmp_path / "full"
    code, text = cli_subprocess([*SUITE, "--out", str(out)], tmp_path, code=DISK_FULL)
    assert_one_error(code, text, f"cannot write {out}/cells/{SEED1}: No space left on device")
    assert "1 finished cells are kept" in text.splitlines()[0]
    assert no_temp_files(out) and not (out / "results.json").exists()
    cell = json.loads((out / "cells" / SEED0).read_text())
    assert cell["records"] == json.loads((finished / "cells" / SEED0).read_text())["records"]
    code, text = run_main([*SUITE, "--out", str(out)], capsys)
    assert code == 0 and "1 cells run, 1 reused" in text, text
    assert (out / "results.json").read_bytes() == (finished / "results.json").read_bytes()


LIST_CASES = [
    (["--methods", "concat,concat"], "--methods lists concat more than once"),
    (["--datasets", "handwritten,handwritten"], "--datasets lists handwritten more than once"),
    (["--protocols", "clean,clean"], "--protocols lists clean more than once"),
    (["--seeds", str(2**32)], "at most 10000 seeds"),
]


@pytest.mark.parametrize("extra, needle", LIST_CASES, ids=[c[1] for c in LIST_CASES])
def test_duplicated_names_and_huge_seed_counts_are_one_error(tmp_path, capsys, extra, needle):
    out = tmp_path / "out"
    code, text = run_main([*SUITE, *extra, "--out", str(out)], capsys)
    assert_one_error(code, text, needle)
    assert not out.exists()


@pytest.mark.parametrize("extra, needle", LIST_CASES[::3], ids=[c[1] for c in LIST_CASES[::3]])
def test_duplicated_names_and_huge_seed_counts_are_one_error_in_a_subprocess(tmp_path, extra, needle):
    out = tmp_path / "out"
    code, text = cli_subprocess([*SUITE, *extra, "--out", str(out)], tmp_path)
    assert_one_error(code, text, needle)
    assert not out.exists()


def test_stale_temp_files_of_a_killed_run_are_removed(finished, tmp_path, capsys):
    """In-process; through a subprocess: test_suite_faults' kill -9 test (no .tmp left after reruns)."""
    out = copy(finished, tmp_path)
    stale = [out / ".results.json.ab12cd_3.tmp", out / "cells" / f".{SEED1}.zz99yy88.tmp"]
    kept = [out / "notes.tmp", out / "cells" / ".mine.tmp"]  # not our naming pattern: left alone
    for p in stale + kept:
        p.write_text("partial")
    code, text = run_main([*SUITE, "--out", str(out)], capsys)
    assert code == 0, text
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    said = " ".join(text.split())
    assert f"removed cells/.{SEED1}.zz99yy88.tmp, a temporary file of a run that was killed" in said, text


def test_temp_files_are_kept_while_another_run_writes_into_the_folder(tmp_path):
    from pmrfusion.paths import run_folder

    tmp = tmp_path / ".results.json.ab12cd34.tmp"
    with run_folder(tmp_path) as removed:
        assert removed == []
        tmp.write_text("being written")
        with run_folder(tmp_path) as removed_by_second:  # a second run: the folder is in use
            assert removed_by_second == [] and tmp.exists()
    with run_folder(tmp_path) as removed:
        assert removed == [tmp] and not tmp.exists()
