"""Start-up cost: `import pmrfusion` and `pmrfusion datasets` never import torch; `--help` lists all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_and_datasets_listing_do_not_import_torch():
    out = _python(
        "import sys\n"
        "import pmrfusion\n"
        "print('root', 'torch' in sys.modules)\n"
        "from pmrfusion.cli import main\n"
        "sys.argv = ['pmrfusion', 'datasets']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print('datasets', 'torch' in sys.modules)\n"
        "sys.argv = ['pmrfusion', '--help']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print('help', 'torch' in sys.modules)\n"
    )
    assert "root False" in out and "datasets False" in out and "help False" in out
    assert "select-on-validation" in out  # --help lists every command
    assert "handwrit" in out and "1600/400" in out  # the catalog, listed without loading


def test_public_names_load_on_first_use_and_train_stays_the_function():
    out = _python(
        "import sys, pmrfusion as pf\n"
        "import pmrfusion.train.checkpoint\n"  # the subpackage does not take over the name
        "print(callable(pf.train) and pf.train.__module__ == 'pmrfusion.train.trainer')\n"
        "print(sorted(pf._SOURCES) == sorted(pf.__all__))\n"
        "print('rcml' in pf.available_protocols(), 'torch' in sys.modules)\n"
        "print(all(hasattr(pf, n) for n in pf.__all__) and set(pf.__all__) <= set(dir(pf)))\n"
    )
    assert out.split() == ["True", "True", "True", "True", "True"]


def test_command_table_matches_the_registered_commands():
    from pmrfusion.cli import COMMAND_MODULES, app, requested_command

    registered = {
        (c.name or c.callback.__name__.replace("_", "-")): c.callback.__module__.rsplit(".", 1)[-1]
        for c in app.registered_commands
    }
    assert registered == COMMAND_MODULES
    assert requested_command(["--threads", "2", "datasets", "--load"]) == "datasets"
    assert requested_command(["--help"]) is None and requested_command(["nosuch"]) is None


def test_cli_device_help_is_the_trainers():
    from pmrfusion.cli.options import DEVICE_HELP
    from pmrfusion.train.devices import DEVICE_HELP as trainer_help

    assert trainer_help == DEVICE_HELP


def test_importing_subpackages_warns_nothing():
    """The package class that keeps `pf.train` the function must not make the import system warn
    (`pmrfusion.types` once rebound the name `types` that class relied on)."""
    code = (
        "import warnings; warnings.simplefilter('error'); import pmrfusion as pf; "
        "import pmrfusion.types, pmrfusion.train.trainer; assert callable(pf.train)"
    )
    _python(code)
