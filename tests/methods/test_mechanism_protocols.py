"""Protocols as the methods see them: under both missing protocols no registered method's output
depends on the dropped modality's real values; Gaussian noise has variance eps exactly in the
corrupted (sample, modality) cells and nowhere else, at every eps and on every modality."""

import pytest
import torch

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.eval.protocols import conditions
from pmrfusion.methods import available_methods, build_method
from pmrfusion.methods.base import option_names

torch.set_num_threads(1)

DIMS = {"a": 6, "b": 5, "c": 4}
SMALL = dict(hidden=8, embed_dim=8, proj_hidden=0, token_dim=8, heads=2, depth=1, proj_dim=8, d1=2, rip_dim=2)


def _split(n, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(n, d, generator=g) * scale for m, d in DIMS.items()}
    fill = {m: torch.full((d,), -1.5) for m, d in DIMS.items()}  # the scaled original-unit zero
    return TensorSplit(feats, torch.arange(n) % 3, torch.arange(n), fill)


@pytest.mark.parametrize("protocol", ["missing", "missing_mean"])
def test_no_method_sees_the_dropped_modality(protocol):
    """Two test sets that differ only in the values of the modalities a condition drops give every
    method the same outputs under that condition (and different ones on the clean set)."""
    base = _split(12, 0)
    for name in sorted(available_methods()):
        fields = set(option_names(name))  # the options the method reads
        torch.manual_seed(0)
        model = build_method(name, DIMS, 3, **{k: v for k, v in SMALL.items() if k in fields}).eval()
        for cond in conditions(protocol, base, 0):
            dropped = [m for m in DIMS if m not in cond.present_modalities]
            other = TensorSplit(
                {m: x + 3.0 if m in dropped else x for m, x in base.features.items()},
                base.labels, base.index, base.absent_fill,
            )
            twin = next(c for c in conditions(protocol, other, 0) if c.name == cond.name)
            with torch.no_grad():
                out = model(cond.features, cond.present).logits
                out2 = model(twin.features, twin.present).logits
                clean = model(base.features).logits
                clean2 = model(other.features).logits
            torch.testing.assert_close(out, out2, msg=f"{name} {cond.name}")
            assert float((clean - clean2).abs().max()) > 1e-5, name


def test_gaussian_noise_has_variance_eps_in_the_corrupted_cells_only():
    test = _split(4000, 1, scale=3.0)
    conds = {c.name: c for c in conditions("gaussian", test, 7)}
    assert list(conds) == ["gaussian:0", "gaussian:1", "gaussian:5", "gaussian:10"]
    hit_masks = []
    for eps in (1, 5, 10):
        c = conds[f"gaussian:{eps}"]
        assert bool(c.present.all()) and c.present_modalities == list(DIMS)
        hits = []
        for m, x in test.features.items():
            diff = c.features[m] - x
            hit = (diff != 0).any(1)
            assert bool((diff[hit] != 0).all())  # a corrupted cell: every entry gets noise
            assert bool((diff[~hit] == 0).all())  # the others are untouched
            noise = diff[hit]
            assert float(noise.mean()) == pytest.approx(0.0, abs=0.05 * eps**0.5)
            assert float(noise.var()) == pytest.approx(eps, rel=0.06), (m, eps)
            hits.append(hit)
        hit = torch.stack(hits, 1)
        assert float(hit.float().mean()) == pytest.approx(0.5, abs=0.02)  # p = 0.5 per cell
        # cells are drawn independently per modality (not the same rows for every modality)
        assert 0.15 < float((hit[:, 0] & hit[:, 1]).float().mean()) < 0.35
        hit_masks.append(hit)
    assert all(torch.equal(conds["gaussian:0"].features[m], x) for m, x in test.features.items())
    assert not torch.equal(hit_masks[0], hit_masks[2])  # each eps draws its own cells
