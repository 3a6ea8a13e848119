"""README's examples as written: every `pmrfusion ...` shell line names a real command with real
options and can be pasted (no `a|b` alternatives, no `...`); every Python block runs (a block after
a `<!-- readme-test: slow -->` line only with PMRFUSION_README_SLOW=1, one that needs the data root
is skipped without it)."""

import importlib.util
import os
import re
import shlex
from pathlib import Path

import pytest
import typer.main

from pmrfusion import cli
from pmrfusion.data.loaders import default_data_root

README = Path(__file__).resolve().parents[2] / "README.md"
SLOW = "<!-- readme-test: slow -->"
NEEDS_DATA = ("cub", "pie", "wikipedia", "avmnist", "mosi")


def _blocks(lang: str) -> list[tuple[int, str, bool]]:
    """(line number, code, marked slow) of every ```lang block, indented ones included."""
    lines = README.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)```" + lang + r"\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, start = len(m.group(1)), i
        body = []
        i += 1
        while not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:])
            i += 1
        slow = any(SLOW in lines[j] for j in range(max(0, start - 2), start))
        out.append((start + 1, "\n".join(body) + "\n", slow))
        i += 1
    return out


def _shell_commands() -> list[tuple[int, list[str]]]:
    """(line, argv after `pmrfusion`) of every pmrfusion command line of the bash blocks."""
    cmds = []
    for start, code, _ in _blocks("bash"):
        joined = code.replace("\\\n", " ")
        for k, line in enumerate(joined.splitlines()):
            words = shlex.split(line, comments=True)
            if words and words[0] == "pmrfusion":
                cmds.append((start + k + 1, words[1:]))
    return cmds


def _line_id(v) -> str:
    return str(v) if isinstance(v, int) else ""


def _options(command) -> set[str]:
    return {o for p in command.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}


def test_readme_has_shell_commands_and_python_blocks():
    assert len(_shell_commands()) > 20 and len(_blocks("python")) >= 5


@pytest.mark.parametrize("line,argv", _shell_commands(), ids=_line_id)
def test_every_shell_line_names_a_real_command_and_options(line, argv):
    group = typer.main.get_command(cli.app)
    assert not any("|" in w or w == "..." for w in argv), f"README line {line} cannot be pasted: {argv}"
    rest = list(argv)
    root = _options(group)
    while rest and rest[0].startswith("-"):  # root options: --threads N, --version
        opt = rest.pop(0)
        assert opt in root, f"README line {line}: unknown option {opt}"
        if opt == "--threads":
            rest.pop(0)
    if not rest:
        return
    name = rest.pop(0)
    assert name in group.commands, f"README line {line}: unknown command {name}"
    known = _options(group.commands[name])
    for w in rest:
        if w.startswith("--"):
            assert w.split("=", 1)[0] in known, f"README line {line}: `{name}` has no option {w}"


@pytest.mark.parametrize("start,code,slow", _blocks("python"), ids=_line_id)
def test_every_python_block_runs(start, code, slow, tmp_path, monkeypatch):
    if slow and not os.environ.get("PMRFUSION_README_SLOW"):
        pytest.skip(f"README line {start}: marked slow (set PMRFUSION_README_SLOW=1)")
    root = default_data_root()
    wanted = [d for d in NEEDS_DATA if f'"{d}"' in code]
    if wanted and (root is None or not all((root / d).is_dir() for d in wanted)):
        pytest.skip(f"README line {start}: needs {wanted} under the data root")
    imported = re.findall(r"^(?:from|import) ([A-Za-z_]\w*)", code, flags=re.M)
    absent = [m for m in imported if importlib.util.find_spec(m) is None]
    if absent:  # e.g. dask_jobqueue: a cluster's package, not a dependency of pmrfusion
        pytest.skip(f"README line {start}: needs {absent}, not installed here")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{start}", "exec"), {"__name__": "readme"})
