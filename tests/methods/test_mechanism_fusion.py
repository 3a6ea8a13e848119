"""Every registered method fuses: on data where each modality alone tells only half of the label, each
method beats single-modality logistic regressions trained in the same test by a wide margin (a
do-nothing or one-modality model cannot). The static baselines' rules (late = mean of per-modality
logits, concat / map-then-concat heads) are pinned; every method is mapped to its mechanism tests."""

from pathlib import Path

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.methods import available_methods, build_method
from pmrfusion.methods.base import option_names
from pmrfusion.train.trainer import TrainConfig, predict, seed_everything, train

torch.set_num_threads(1)
pytest.importorskip("geomloss")  # iid-*

DIMS = {"a": 6, "b": 5}
SMALL = dict(hidden=32, embed_dim=16, proj_hidden=0, token_dim=16, heads=2, depth=1, proj_dim=32)

# method family -> the test files that pin its mechanism (tests/methods/)
FAMILIES = {
    "baselines": (["concat", "late"], ["test_mechanism_fusion.py"]),
    "ablations": (["ffn-concat", "identity-concat", "linear-concat"], ["test_mechanism_fusion.py"]),
    "pmr-concat": (["sg-concat", "rg-concat"], ["test_pmr_fidelity.py", "test_mechanism_backends.py"]),
    "cmmp": (["cmmp", "sg-cmmp", "rg-cmmp"], ["test_mechanism_backends.py", "test_backends.py"]),
    "perceiver": (["perceiver", "sg-perceiver", "rg-perceiver"], ["test_mechanism_backends.py"]),
    "mbt": (["mbt", "sg-mbt", "rg-mbt"], ["test_mechanism_backends.py"]),
    "umoe": (["umoe", "sg-umoe", "rg-umoe"], ["test_mechanism_backends.py", "test_backends.py"]),
    "moe": (["moe", "sg-moe", "rg-moe"], ["test_mechanism_backends.py"]),
    "srht": (["sg-srht", "rg-srht"], ["test_mechanism_backends.py", "test_pmr_fidelity.py"]),
    "qmf": (["qmf"], ["test_mechanism_dynamic.py", "test_qmf.py"]),
    "pdf": (["pdf"], ["test_mechanism_dynamic.py", "test_pdf.py"]),
    "iid": (["iid-l", "iid-q", "iid-p"], ["test_mechanism_dynamic.py", "test_iid.py"]),
    "evidential": (["tmc", "ecml"], ["test_mechanism_evidential.py", "test_mechanism_dynamic.py"]),
    "disentangled": (["misa", "drfuse"], ["test_mechanism_disentangled.py"]),
}


def test_every_registered_method_has_a_mechanism_test_family():
    listed = [m for names, _ in FAMILIES.values() for m in names]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(available_methods()), "add the new method to FAMILIES and pin its mechanism"
    here = Path(__file__).parent
    for _, files in FAMILIES.values():
        assert all((here / f).is_file() for f in files), files


def _split(n, seed):
    """4 classes: a carries y // 2, b carries y % 2, each with unit-variance noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    a = torch.randn(n, DIMS["a"], generator=g)
    b = torch.randn(n, DIMS["b"], generator=g)
    a[:, 0] += 2.0 * (2 * (y // 2) - 1)
    b[:, 0] += 2.0 * (2 * (y % 2) - 1)
    return TensorSplit({"a": a, "b": b}, y, torch.arange(n) + 10_000 * seed)


@pytest.fixture(scope="module")
def halves():
    tr, te = _split(300, 0), _split(400, 1)
    single = {}
    for m in DIMS:  # the single-modality baseline, trained here
        lr = LogisticRegression(max_iter=500).fit(tr.features[m].numpy(), tr.labels.numpy())
        single[m] = float((lr.predict(te.features[m].numpy()) == te.labels.numpy()).mean())
    return tr, te, max(single.values())


def _options(name):
    fields = set(option_names(name))  # the options the method reads
    evidential = name in ("tmc", "ecml")  # their official evidence nets: one Linear + Softplus
    return {k: v for k, v in SMALL.items() if k in fields and not (evidential and k == "hidden")}


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_method_fuses_both_modalities_beating_single_modality_baselines(name, halves):
    tr, te, single = halves
    assert single < 0.6  # one modality alone cannot name the class
    seed_everything(0)
    model = build_method(name, DIMS, 4, **_options(name))
    lr = 1e-2 if name in ("tmc", "ecml") else 3e-3
    train(model, tr, None, TrainConfig(epochs=15, batch_size=32, lr=lr))
    acc = float((predict(model, te.features).argmax(-1) == te.labels).float().mean())
    # others reach ~0.93 (Bayes ~0.95); tmc / ecml ~0.8-0.9 (per-view EDL terms on half-informative views)
    assert acc > single + 0.2, (acc, single)


def _x(rows=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(rows, d, generator=g) for m, d in DIMS.items()}


def test_late_fusion_is_the_mean_of_per_modality_logits():
    torch.manual_seed(0)
    model = build_method("late", DIMS, 4, hidden=8).eval()
    x = _x()
    with torch.no_grad():
        out = model(x)
        per = [model.heads[m](x[m]) for m in DIMS]
    torch.testing.assert_close(out.modality_logits["a"], per[0])
    torch.testing.assert_close(out.logits, (per[0] + per[1]) / 2)


@pytest.mark.parametrize("name", ["concat", "identity-concat", "linear-concat", "ffn-concat"])
def test_concat_heads_read_each_modality_through_its_own_map(name):
    """concat / identity-concat: head(cat(a, b)); linear-concat: affine d -> d maps; ffn-concat: a
    non-linear map per modality. Changing b leaves the mapped a untouched and changes the logits."""
    torch.manual_seed(0)
    model = build_method(name, DIMS, 4, hidden=8).eval()
    x = _x()
    maps = getattr(model, "maps", [torch.nn.Identity(), torch.nn.Identity()])
    with torch.no_grad():
        z = [f(x[m]) for f, m in zip(maps, DIMS)]
        torch.testing.assert_close(model(x).logits, model.head(torch.cat(z, -1)))
        moved = {**x, "b": x["b"] + 1.0}
        torch.testing.assert_close(maps[0](moved["a"]), z[0])
        assert float((model(moved).logits - model(x).logits).abs().max()) > 1e-4
        for f, m in zip(maps, DIMS):
            u, v = x[m][:4], x[m][4:]
            mid = f((u + v) / 2)
            affine = torch.allclose(mid, (f(u) + f(v)) / 2, atol=1e-5)
            assert affine == (name != "ffn-concat"), (name, m)
            if name in ("concat", "identity-concat"):
                torch.testing.assert_close(f(u), u)
