"""DDP: a 2-process torchrun run equals a 1-process run of the same seed, up to float error.

Why it can: both runs draw the same per-epoch permutation; each rank trains on a strided half
of every global batch of 64 rows and DDP averages the two gradients, which (with the loss
rescaled by shard size) is the full-batch gradient. Dropout is set to 0 so that no per-rank
random stream enters. Tolerance: 1e-4 absolute on every parameter after 3 epochs (observed
~1e-6: only the summation order of the gradient differs).
"""

import torch

from pmrfusion.bench.runner import fit_method
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.train.checkpoint import load_checkpoint
from pmrfusion.train.trainer import TrainConfig, predict

TOL = 1e-4


def test_two_process_run_matches_single_process(tmp_path, torchrun_two):
    ckpt = tmp_path / "ddp.pt"
    r = torchrun_two("-m", "pmrfusion", "train", "--dataset", "handwritten", "--method", "concat",
                     "--seed", "3", "--epochs", "3", "--batch-size", "64", "--set", "dropout=0.0",
                     "--quiet", "--save", ckpt, timeout=240)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    # rank 0 alone logs the result
    assert r.stdout.count("test accuracy") == 1 and "2 processes, cpu" in r.stdout
    # the distributed checkpoint loads in this single process
    ddp_model, meta, _ = load_checkpoint(ckpt)
    assert meta["method"] == "concat"

    prepared = prepare(load_dataset("handwritten"), seed=3)
    single, _ = fit_method("concat", prepared, 3, {"dropout": 0.0}, TrainConfig(epochs=3, batch_size=64))
    a, b = single.state_dict(), ddp_model.state_dict()
    assert set(a) == set(b)
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff < TOL, diff
    la, lb = predict(single, prepared.test.features), predict(ddp_model, prepared.test.features)
    assert torch.equal(la.argmax(-1), lb.argmax(-1))
    # and the models did train (not two copies of an untouched initialisation)
    assert float((la.argmax(-1) == prepared.test.labels).float().mean()) > 0.9
