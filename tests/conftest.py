import os
import shutil
import subprocess
import sys
from pathlib import Path

# Subprocesses started by tests (CLI, torchrun) inherit this: one OpenMP thread each, so a
# busy machine cannot stall them in thread barriers. In-process tests use 2 threads below.
os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from pmrfusion.data.loaders import default_data_root, load_dataset  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def data_root():
    root = default_data_root()
    if root is None or not (root / "cub").is_dir():
        pytest.skip("../shared/data not available")
    return root


@pytest.fixture(scope="module")
def mosi_text(data_root):
    """The built-in raw `mosi-text` (transcripts + audio/video vectors)."""
    if not (data_root / "mosi").is_dir():
        pytest.skip("../shared/data/mosi not available")
    return load_dataset("mosi-text", data_root)


def _torchrun_launcher() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    if exe.exists():
        return [str(exe)]
    if shutil.which("torchrun"):
        return ["torchrun"]
    return [sys.executable, "-m", "torch.distributed.run"]


@pytest.fixture(scope="session")
def torchrun_two():
    """`run(*args, timeout=...)`: a script, or `-m module ...`, under torchrun with 2 CPU processes."""

    def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
        cmd = [*_torchrun_launcher(), "--standalone", "--nproc_per_node", "2", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)

    return run
