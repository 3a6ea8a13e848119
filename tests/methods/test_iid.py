"""IID: distribution coherence, informatic constraint, the three weightings, any M."""

import pytest
import torch

from pmrfusion.data.loaders import default_data_root, load_dataset
from pmrfusion.data.prepared import prepare
from pmrfusion.eval.protocols import conditions
from pmrfusion.methods import build_method
from pmrfusion.objectives.wasserstein import (
    SpectralRIP,
    coherence_loss,
    gaussian_kl,
    informatic_constraint,
    relaxed_wasserstein,
)
from pmrfusion.train import TrainConfig, predict, seed_everything, train
from pmrfusion.types import Batch

torch.set_num_threads(1)
pytest.importorskip("geomloss")


def test_dc_zero_for_identical_and_grows_with_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, generator=g) * 20  # raw scale: normalised cost must not underflow
    assert abs(float(relaxed_wasserstein(x, x.clone()))) < 1e-4
    assert abs(float(relaxed_wasserstein(x, x[torch.randperm(64, generator=g)]))) < 1e-4
    vals = [float(relaxed_wasserstein(x, x + s)) for s in (2.0, 10.0, 40.0)]
    assert vals[0] > 1e-3 and vals[0] < vals[1] < vals[2]
    y = (x + 10.0).requires_grad_()
    loss = relaxed_wasserstein(x, y)
    loss.backward()
    assert torch.isfinite(loss.detach()) and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_coherence_after_rip_reduction():
    g = torch.Generator().manual_seed(1)
    rip = SpectralRIP(dim=32, d1=8, k=6, seed=0)
    z = torch.randn(40, 32, generator=g)
    red = rip([z, z.clone(), z + 3.0])
    assert all(r.shape == (40, 6) for r in red)
    assert float(coherence_loss(red[:2])) < 1e-4
    assert float(coherence_loss([red[0], red[2]])) > 1e-3
    assert torch.equal(SpectralRIP(32, 8, 6, seed=0).phi, rip.phi)  # fixed, seeded projection


def test_gaussian_kl_and_informatic_constraint():
    z = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])  # mean 0, var 1
    assert float(gaussian_kl(z)) == pytest.approx(0.0, abs=1e-6)
    z2 = torch.tensor([[3.0], [1.0]])  # mean 2, var 1 -> 0.5 * 4
    assert float(gaussian_kl(z2)) == pytest.approx(2.0, abs=1e-5)
    head = torch.nn.Linear(4, 3)
    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(8, 4, generator=g, requires_grad=True) for _ in range(3)]
    fused = sum(zs) / 3
    loss = informatic_constraint(head, fused, zs, torch.randint(0, 3, (8,), generator=g))
    loss.backward()
    assert torch.isfinite(loss.detach()) and all(torch.isfinite(z.grad).all() for z in zs)


def _batch(dims, B=10, K=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(B, d, generator=g) for m, d in dims.items()}
    return Batch(
        feats,
        torch.ones(B, len(dims), dtype=torch.bool),
        torch.randint(0, K, (B,), generator=g),
        torch.arange(B),
    )


@pytest.mark.parametrize("name", ["iid-l", "iid-q", "iid-p"])
@pytest.mark.parametrize("M", [2, 3, 6])
def test_any_number_of_modalities(name, M):
    dims = {f"v{i}": 3 + i for i in range(M)}
    b = _batch(dims)
    model = build_method(name, dims, 4, hidden=16, proj_dim=16, d1=4, rip_dim=4)
    model.train()
    out = model(b.features, b.present)
    aux = model.auxiliary_losses(out, b)
    assert {"ic", "dc"} <= set(aux) and all(torch.isfinite(v.detach()) for v in aux.values())
    model.eval()
    present = torch.ones(10, M, dtype=torch.bool)
    present[:, 0] = False
    out = model(b.features, present)
    assert torch.all(out.weights["v0"] == 0)
    if name != "iid-q":
        total = sum(out.weights.values())
        assert torch.allclose(total, torch.ones_like(total))


def test_flags_switch_losses_off():
    dims = {"a": 4, "b": 5}
    b = _batch(dims)
    model = build_method("iid-l", dims, 4, ic=False, dc=False, hidden=8, proj_dim=8, d1=2, rip_dim=2)
    assert set(model.auxiliary_losses(model(b.features, b.present), b)) == set()
    assert model.loss_weights["ic"] == 0.1 and model.loss_weights["dc"] == 0.1


@pytest.mark.parametrize("name", ["iid-l", "iid-q", "iid-p"])
def test_gradients_finite_on_real_batch(name):
    from pmrfusion.train.trainer import total_loss

    if default_data_root() is None:
        pytest.skip("shared data not present")
    p = prepare(load_dataset("cub"))
    model = build_method(name, p.dims, p.num_classes)
    model.train()
    for _ in range(2):
        loss, parts = total_loss(model, p.train.batch(torch.arange(64)))
        model.zero_grad()
        loss.backward()
        assert torch.isfinite(loss.detach())
        assert all(q.grad is None or torch.isfinite(q.grad).all() for q in model.parameters())
        assert parts["dc"] > 0


def test_iid_q_trains_on_handwritten():
    p = prepare(load_dataset("handwritten"))
    seed_everything(0)
    model = build_method("iid-q", p.dims, p.num_classes)
    train(model, p.train, p.val, TrainConfig(epochs=4, patience=4))
    acc = float((predict(model, p.test.features).argmax(-1) == p.test.labels).float().mean())
    assert acc >= 0.9


def test_iid_q_known_finding_noise_raises_its_energy_weights_and_costs_accuracy():
    """Known finding, measured (not a bug of the code; replaces the strict xfail of
    test_dynamic_fidelity): Handwritten seed 0, Gaussian eps 10, L_dc off. iid-q trains its per-modality
    task loss and matches `late` on clean data, but feature noise *raises* the energy confidence of the
    noisy modality (its z_m and so its logits grow), so the unnormalised QMF-style weights favour the
    corrupted views and iid-q falls behind `late` (here ~0.87 vs ~0.96 after 8 epochs; 0.80 vs 0.96
    after 20; results/missing_variants: 73.0 vs 96.25). If this test fails because the gap closed or the
    weights stopped rising, the finding is gone: update the docs and this test."""
    hw = prepare(load_dataset("handwritten"), 0.15, 0)
    noisy = next(c for c in conditions("gaussian", hw.test, 0) if c.name == "gaussian:10")
    tc = TrainConfig(epochs=8, patience=8)
    models = {}
    for name, options in (("late", {}), ("iid-q", {"dc": False})):
        seed_everything(0)
        models[name] = build_method(name, hw.dims, hw.num_classes, **options)
        res = train(models[name], hw.train, hw.val, tc)
    uni = [h["unimodal"] for h in res.history]
    assert uni[-1] < 0.5 * uni[0]  # the per-modality task loss is trained

    def acc(model, feats):
        return float((predict(model, feats).argmax(-1) == hw.test.labels).float().mean())

    assert acc(models["iid-q"], hw.test.features) > 0.95 and acc(models["late"], hw.test.features) > 0.95
    model = models["iid-q"].eval()
    with torch.no_grad():
        w = model(noisy.features, noisy.present).weights
    hit = torch.stack([(noisy.features[m] != hw.test.features[m]).any(1) for m in model.modalities], 1)
    weights = torch.stack([w[m] for m in model.modalities], 1)
    assert float(weights[hit].mean()) > 1.2 * float(weights[~hit].mean())  # noise raises the weight
    a_late, a_iidq = acc(models["late"], noisy.features), acc(models["iid-q"], noisy.features)
    assert a_iidq < a_late - 0.04, (a_iidq, a_late)  # ... and costs accuracy


def test_analysis_wasserstein_of_a_translation_is_the_shift():
    pytest.importorskip("ot")
    from pmrfusion.analysis.coherence_analysis import mean_pairwise_wasserstein, wasserstein2

    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=g)
    shift = torch.tensor([3.0, 0.0, 4.0, 0.0])
    assert wasserstein2(x, x.clone()) == pytest.approx(0.0, abs=1e-6)
    assert wasserstein2(x, x + shift) == pytest.approx(5.0, abs=1e-5)
    assert mean_pairwise_wasserstein([x, x, x + shift]) == pytest.approx(10.0 / 3.0, abs=1e-5)
