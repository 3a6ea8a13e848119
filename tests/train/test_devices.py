"""Devices: `auto` / `cpu` train here; a device this machine lacks is one error line before training."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from pmrfusion.bench.runner import fit_method
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.errors import PMRFusionError
from pmrfusion.train.devices import resolve_device
from pmrfusion.train.trainer import TrainConfig, predict

CUDA = torch.cuda.is_available()


def test_names_resolve_and_bad_ones_are_refused():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if CUDA else "cpu")
    for bad in ("gpu", "cuda:x", "", "CPU"):
        with pytest.raises(PMRFusionError, match="--device must be"):
            resolve_device(bad)
    with pytest.raises(PMRFusionError, match="--device must be"):
        TrainConfig(device="tpu")


@pytest.mark.skipif(CUDA, reason="checks the error of a machine without CUDA")
def test_cuda_where_there_is_none_is_one_line_before_training(tmp_path):
    with pytest.raises(PMRFusionError, match="CUDA is not available"):
        TrainConfig(device="cuda")
    r = subprocess.run(
        [sys.executable, "-m", "pmrfusion", "bench", "--device", "cuda:1", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.startswith("error: --device cuda:1: CUDA is not available")
    assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()


def test_cpu_and_auto_train_the_same_model_here():
    p = prepare(load_dataset("handwritten"), 0.15, 0)
    tc = TrainConfig(epochs=2)
    a, _ = fit_method("concat", p, 0, {}, tc)
    b, _ = fit_method("concat", p, 0, {}, TrainConfig(epochs=2, device="cpu"))
    if not CUDA:
        assert torch.equal(predict(a, p.test.features), predict(b, p.test.features))
    assert next(b.parameters()).device.type == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_training_on_cuda_keeps_batches_masks_and_labels_on_the_model_device():
    p = prepare(load_dataset("handwritten"), 0.15, 0)
    tc = TrainConfig(epochs=2, device="cuda", modality_dropout=0.3)
    model, result = fit_method("sg-concat", p, 0, {}, tc)
    assert next(model.parameters()).device.type == "cuda" and result.epochs_run == 2
    assert predict(model, p.test.features).device.type == "cpu"


@pytest.mark.parametrize("command", ["bench", "suite", "rcml", "retrieval"])
def test_grid_commands_refuse_to_run_under_torchrun(command, tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2"}
    r = subprocess.run(
        [sys.executable, "-m", "pmrfusion", command, "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.startswith(f"error: `{command}` does not run under torchrun")
    assert not (tmp_path / "o").exists()


def test_threads_option_sets_torch_threads_and_refuses_zero(tmp_path):
    code = (
        "import sys, torch\nfrom pmrfusion.cli import main\n"
        "sys.argv = ['pmrfusion', '--threads', '1', 'methods']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('threads', torch.get_num_threads())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip().endswith("threads 1"), r.stdout[-300:] + r.stderr[-500:]
    r = subprocess.run([sys.executable, "-m", "pmrfusion", "--threads", "0", "methods"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "--threads" in r.stderr.splitlines()[0]
