"""`TrainConfig.lr_schedule`: constant (default), cosine, multistep; stepped once per epoch on every
optimizer, recorded in a cell's settings only when not constant."""

import csv
import math
from pathlib import Path

import pytest
import torch

from pmrfusion.bench.experiment import load_experiment
from pmrfusion.bench.provenance import config_hash
from pmrfusion.bench.records import cell_train_settings
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import build_method
from pmrfusion.train import trainer
from pmrfusion.train.trainer import TrainConfig, lr_schedulers, seed_everything

ROOT = Path(__file__).resolve().parents[2]


def _split(n: int = 24) -> TensorSplit:
    gen = torch.Generator().manual_seed(0)
    feats = {"a": torch.randn(n, 6, generator=gen), "b": torch.randn(n, 4, generator=gen)}
    return TensorSplit(feats, torch.arange(n) % 3, torch.arange(n))


def _lrs_after_training(monkeypatch, schedule: str, epochs: int) -> list[float]:
    """The lr of every optimizer the trainer built, after `epochs` epochs of sg-concat."""
    made = []

    def spy(opts, name, n):
        made.append((opts, lr_schedulers(opts, name, n)))
        return made[-1][1]

    monkeypatch.setattr(trainer, "lr_schedulers", spy)
    seed_everything(0)
    model = build_method("sg-concat", {"a": 6, "b": 4}, 3)
    trainer.train(
        model, _split(), None, TrainConfig(epochs=epochs, batch_size=8, lr=1e-2, lr_schedule=schedule)
    )
    ((opts, _),) = made
    assert len(opts) == 2  # the main AdamW and PMR's extra SGD
    return [o.param_groups[0]["lr"] for o in opts]


def test_cosine_lr_follows_the_formula():
    base, epochs = 1e-2, 8
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    (sched,) = lr_schedulers([opt], "cosine", epochs)
    for k in range(1, epochs + 1):
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(base * (1 + math.cos(math.pi * k / epochs)) / 2)


def test_multistep_drops_tenfold_at_half_and_three_quarters():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    (sched,) = lr_schedulers([opt], "multistep", 8)
    lrs = []
    for _ in range(8):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01, 0.01])
    assert lr_schedulers([opt], "constant", 8) == []


def test_the_trainer_steps_every_optimizer_once_per_epoch(monkeypatch):
    main, pmr = _lrs_after_training(monkeypatch, "multistep", 4)  # milestones 2 and 3
    assert main == pytest.approx(1e-2 * 0.01)
    assert pmr == pytest.approx(2.5e-4 * 0.01)  # the paper's extra SGD, scheduled too
    main, pmr = _lrs_after_training(monkeypatch, "cosine", 3)
    assert main == pytest.approx(0.0, abs=1e-12) and pmr == pytest.approx(0.0, abs=1e-12)
    assert _lrs_after_training(monkeypatch, "constant", 2) == pytest.approx([1e-2, 2.5e-4])


def test_unknown_schedule_is_one_clear_error():
    with pytest.raises(PMRFusionError, match="unknown lr_schedule 'linear'"):
        TrainConfig(lr_schedule="linear")


def test_default_schedule_keeps_cell_settings_and_committed_hashes():
    assert "lr_schedule" not in cell_train_settings(TrainConfig())
    assert cell_train_settings(TrainConfig(lr_schedule="cosine"))["lr_schedule"] == "cosine"
    exp = load_experiment(ROOT / "experiments" / "retrieval.toml", ROOT)
    assert "lr_schedule" not in exp.grids[0].settings["train"]
    with open(exp.out / "cells.csv", newline="") as fh:
        stored = {(r["grid"], r["method"]): r["config_hash"] for r in csv.DictReader(fh)}
    current = {(g.id, m): config_hash(g.cell_settings(m)) for g in exp.grids for m in g.spec.methods}
    assert len(set(current) & set(stored)) == len(current)
    assert all(stored[k] == h for k, h in current.items())
