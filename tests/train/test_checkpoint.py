"""Checkpoints: round trip, corrupted and mismatched files give one-line errors (exit code 2)."""

import subprocess
import sys

import pytest
import torch

from pmrfusion.bench.runner import fit_method
from pmrfusion.data.loaders import load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.data.tensors import to_split
from pmrfusion.errors import PMRFusionError
from pmrfusion.train.checkpoint import load_checkpoint, save_checkpoint
from pmrfusion.train.trainer import TrainConfig, predict


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = load_dataset("handwritten")
    prepared = prepare(data, seed=1)
    model, _ = fit_method("sg-concat", prepared, 1, {"n": 2}, TrainConfig(epochs=1, batch_size=128))
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, model, "sg-concat", {"n": 2}, prepared.dims, prepared.num_classes,
                    prepared.scaler, "handwritten")  # fmt: skip
    return data, prepared, model, path


def test_round_trip_gives_identical_predictions(trained):
    data, prepared, model, path = trained
    loaded, meta, scaler = load_checkpoint(path)
    assert meta["method"] == "sg-concat" and meta["config"]["n"] == 2 and meta["dataset"] == "handwritten"
    # the stored scaler reproduces the training-time scaling exactly
    test = to_split(data, data.split("test"), scaler)
    for m in test.features:
        assert torch.equal(test.features[m], prepared.test.features[m])
    a = predict(model, prepared.test.features)
    b = predict(loaded, test.features)
    assert torch.equal(a, b)
    # no pickled objects: the file loads with weights_only=True
    payload = torch.load(path, weights_only=True)
    assert set(payload["state_dict"]) == set(model.state_dict())


def _one_line_error(fn):
    with pytest.raises(PMRFusionError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_corrupted_file(trained, tmp_path):
    _, _, _, path = trained
    raw = path.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(raw[: len(raw) // 2])
    assert "cannot read checkpoint" in _one_line_error(lambda: load_checkpoint(bad))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    assert "cannot read checkpoint" in _one_line_error(lambda: load_checkpoint(junk))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    assert "not a pmrfusion checkpoint" in _one_line_error(lambda: load_checkpoint(other))
    assert "not found" in _one_line_error(lambda: load_checkpoint(tmp_path / "absent.pt"))


def test_mismatched_checkpoint(trained, tmp_path):
    _, _, _, path = trained
    payload = torch.load(path, weights_only=True)
    wrong = dict(payload, config={**payload["config"], "n": 3})  # weights were made with n = 2
    p = tmp_path / "mismatch.pt"
    torch.save(wrong, p)
    assert "does not match its method" in _one_line_error(lambda: load_checkpoint(p))
    incomplete = {k: v for k, v in payload.items() if k != "scaler"}
    p2 = tmp_path / "incomplete.pt"
    torch.save(incomplete, p2)
    assert "missing scaler" in _one_line_error(lambda: load_checkpoint(p2))


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pmrfusion", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_errors_exit_2_without_traceback(trained, tmp_path):
    _, _, _, path = trained
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    payload = torch.load(path, weights_only=True)
    other_dims = tmp_path / "dims.pt"
    torch.save(dict(payload, dims={**payload["dims"], "pixel": 7}), other_dims)
    for ckpt, needle in ((bad, "cannot read checkpoint"), (other_dims, "does not match")):
        r = _cli("eval", "--load", str(ckpt), "--protocols", "clean")
        assert r.returncode == 2, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
        assert "Traceback" not in r.stderr + r.stdout


def test_a_killed_write_leaves_no_temp_file_behind_the_next_save(trained, tmp_path):
    """A kill -9 during a write leaves `.model.pt.XXXXXXXX.tmp`: the next save of that checkpoint
    removes it; other files of the folder (another checkpoint's temp included) are left alone."""
    _, prepared, model, _ = trained
    path = tmp_path / "model.pt"
    stale, other = tmp_path / ".model.pt.ab12cd34.tmp", tmp_path / ".other.pt.ab12cd34.tmp"
    stale.write_bytes(b"half a checkpoint")
    other.write_bytes(b"someone else's")
    save_checkpoint(path, model, "sg-concat", {"n": 2}, prepared.dims, prepared.num_classes,
                    prepared.scaler, "handwritten")  # fmt: skip
    assert path.is_file() and not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.ab12cd34.tmp", "model.pt"]
