"""Every option and argument of every command says what it is for; `--version` answers."""

import typer.main

from pmrfusion import cli
from tests.cli.cli_helpers import run_main


def test_every_option_has_help_text():
    group = typer.main.get_command(cli.app)
    missing = [f"{name} {p.name}" for name, cmd in group.commands.items() for p in cmd.params
               if not getattr(p, "help", None)]  # fmt: skip
    assert missing == []


def test_version_prints_the_version(capsys):
    code, out = run_main(["--version"], capsys, with_stdout=True)
    assert code == 0 and out.startswith("pmrfusion ")
