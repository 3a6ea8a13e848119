import os
import shutil
import subprocess
import sys
import textwrap
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


@pytest.fixture(scope="session")
def train_raw_on_two_ranks(torchrun_two):
    """`train(manifest, folder, encoders={}, max_length=128, epochs=1, batch_size=8)`: `concat` trained
    end to end on a raw manifest by DDP (2 gloo processes, one loader worker each); returns each
    rank's {state, history, world}."""

    def train(manifest, folder, encoders=None, max_length=128, epochs=1, batch_size=8):
        script = Path(folder) / "ddp.py"
        script.write_text(textwrap.dedent(f"""
            import torch
            from pmrfusion.data.loaders import load_dataset
            from pmrfusion.train import distributed
            from pmrfusion.bench.runner import fit_method, prepare_seed
            from pmrfusion.modules.composition import EncoderConfig
            from pmrfusion.train.trainer import TrainConfig
            with distributed.distributed_session() as ctx:
                cfg = EncoderConfig(encoders={dict(encoders or {})!r}, max_length={int(max_length)})
                cfg.loader.num_workers = 1
                p = prepare_seed(load_dataset({str(manifest)!r}), 0, 0.15, cfg)
                tc = TrainConfig(epochs={int(epochs)}, batch_size={int(batch_size)})
                model, res = fit_method("concat", p, 0, {{}}, tc, encoder=cfg)
                torch.save({{"state": model.state_dict(), "history": res.history, "world": ctx.world_size}},
                           {str(folder)!r} + f"/rank{{ctx.rank}}.pt")
        """))
        r = torchrun_two(script)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
        ranks = [torch.load(Path(folder) / f"rank{i}.pt") for i in (0, 1)]
        assert ranks[0]["world"] == 2
        return ranks

    return train
