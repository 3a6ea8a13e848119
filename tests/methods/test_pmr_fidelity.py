"""PMR as the papers build it (issue 8): the maps train, G-structure routing, SRHT inverse path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import pmrfusion as pf
from pmrfusion.modules.reconfiguration import Reconfiguration


@pytest.fixture(scope="module")
def cub(data_root):
    return pf.prepare(pf.load_dataset("cub", data_root), 0.15, 0)


def _fit(name, prepared, epochs, val=True, **cfg):
    pf.seed_everything(0)
    model = pf.build_method(name, prepared.dims, prepared.num_classes, **cfg)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tc = pf.TrainConfig(epochs=epochs, seed=0, patience=10)
    result = pf.train(model, prepared.train, prepared.val if val else None, tc)
    return model, result, start


def _accuracy(model, split):
    return float((pf.predict(model, split.features).argmax(-1) == split.labels).float().mean())


def test_default_maps_train_and_reconstruct(cub):
    model, result, start = _fit("sg-concat", cub, 25, val=False)
    first, last = result.history[0]["preserve"], result.history[-1]["preserve"]
    assert last < 0.5 * first
    moved = [
        float((v - start[f"pmr.{k}"]).norm() / start[f"pmr.{k}"].norm())
        for k, v in model.pmr.state_dict().items()
    ]
    assert min(moved) > 0.02 and sum(moved) / len(moved) > 0.05
    views = [cub.train.features[m] for m in model.modalities]
    with torch.no_grad():
        rec = model.pmr(views)
    cos = [float(F.cosine_similarity(v, r, dim=-1).mean()) for v, r in zip(views, rec.reconstructed)]
    assert sum(cos) / len(cos) > 0.9


def test_strict_and_relaxed_give_different_models(cub):
    sg, _, _ = _fit("sg-concat", cub, 5, val=False)
    rg, _, _ = _fit("rg-concat", cub, 5, val=False)
    assert not torch.allclose(sg.pmr.dissolve[0].weight, rg.pmr.dissolve[0].weight)
    assert not torch.allclose(pf.predict(sg, cub.test.features), pf.predict(rg, cub.test.features))


def test_accuracy_floor_against_concat(cub):
    concat, _, _ = _fit("concat", cub, 60)
    sg, _, _ = _fit("sg-concat", cub, 60)
    assert _accuracy(sg, cub.test) >= _accuracy(concat, cub.test) - 0.06
    assert _accuracy(sg, cub.test) > 0.6  # 10 classes: chance is 0.1


def test_classifier_width_formula():
    dims = {"a": 12, "b": 7}
    l_star = 7
    g = pf.build_method("sg-concat", dims, 3, hidden=0)
    full = pf.build_method("sg-concat", dims, 3, hidden=0, routing="full")
    assert g.classifier_input_dim == 12 + 7 + l_star  # D_F = sum l_m, plus l*
    assert full.classifier_input_dim == (12 + l_star) + (7 + l_star)
    cm = pf.build_method("rg-cmmp", dims, 3, embed_dim=16)
    assert cm.classifier_input_dim == 16 + l_star


def test_g_structure_sends_shared_parts_only_to_the_classifier():
    torch.manual_seed(0)
    for name in ("sg-concat", "rg-cmmp", "rg-umoe", "sg-perceiver", "rg-srht"):
        model = pf.build_method(name, {"a": 12, "b": 7, "c": 9}, 3).eval()
        x = {"a": torch.randn(5, 12), "b": torch.randn(5, 7), "c": torch.randn(5, 9)}
        seen: list[list[torch.Tensor]] = []
        encode, split = model.backend.encode, model.pmr.split

        def spy(xs, *a, _encode=encode, _seen=seen, **k):
            _seen.append([t.clone() for t in xs])
            return _encode(xs, *a, **k)

        def shifted(h, _split=split):
            s, t = _split(h)
            return [si + 5.0 for si in s], t

        model.backend.encode = spy
        base = model(x).logits
        model.pmr.split = shifted
        moved = model(x).logits
        for before, after in zip(*seen):
            torch.testing.assert_close(before, after)  # the back-end never sees S_m
        assert not torch.allclose(base, moved)  # ... but the classifier does


def test_full_routing_feeds_z_to_the_backend():
    torch.manual_seed(0)
    model = pf.build_method("sg-concat", {"a": 12, "b": 7}, 3, routing="full").eval()
    x = {"a": torch.randn(5, 12), "b": torch.randn(5, 7)}
    rec = model.pmr([x["a"], x["b"]])
    feats, _ = model.backend.encode(rec.fused)
    assert feats.shape[1] == sum(model.pmr.out_dims)


def test_optimizer_readings():
    model = pf.build_method("sg-concat", {"a": 12, "b": 7}, 3)
    assert model.default_group_optimizers["pmr"].additional  # main optimizer + the extra SGD
    old = pf.build_method("sg-concat", {"a": 12, "b": 7}, 3, pmr_optimizer="sgd")
    assert not old.default_group_optimizers["pmr"].additional
    main_only = pf.build_method("sg-concat", {"a": 12, "b": 7}, 3, pmr_optimizer="main")
    assert main_only.default_group_optimizers == {}
    with pytest.raises(pf.PMRFusionError, match="pmr_optimizer"):
        pf.build_method("sg-concat", {"a": 12, "b": 7}, 3, pmr_optimizer="adam")


def test_inference_skips_preservation():
    model = pf.build_method("rg-concat", {"a": 12, "b": 7}, 3)
    x = {"a": torch.randn(4, 12), "b": torch.randn(4, 7)}
    assert "preserve" in model.train()(x).aux_losses
    assert "preserve" not in model.eval()(x).aux_losses


def test_srht_preservation_has_a_gradient_and_variants_differ():
    torch.manual_seed(0)
    x = {"a": torch.randn(16, 12), "b": torch.randn(16, 7)}
    for name in ("sg-srht", "rg-srht"):
        model = pf.build_method(name, {"a": 12, "b": 7}, 3).train()
        loss = model(x).aux_losses["preserve"]
        loss.backward()
        assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in model.pmr.gains)
    # the strict term lives in the SRHT domain (width n l_m), the relaxed one in the input domain
    torch.manual_seed(1)
    sg = pf.build_method("sg-srht", {"a": 12, "b": 7}, 3).train()
    torch.manual_seed(1)
    rg = pf.build_method("rg-srht", {"a": 12, "b": 7}, 3).train()
    assert not torch.allclose(sg(x).aux_losses["preserve"], rg(x).aux_losses["preserve"])


def test_srht_reconstruction_goes_through_the_inverse_transforms():
    torch.manual_seed(0)
    block = Reconfiguration([8, 4], n=4, b=0.5, mapping="srht", gain=False)
    v = [torch.randn(3, 8), torch.randn(3, 4)]
    out = block(v)
    h_hat = block.invert(out.shared, out.specific)
    for m, h in enumerate(h_hat):
        bd = block.bounds[m]
        prev = block.prev[m]
        torch.testing.assert_close(h[:, :bd], block.shared_maps[prev].inverse(out.shared[prev]))
        torch.testing.assert_close(h[:, bd:], block.specific_maps[m].inverse(out.specific[m]))
        torch.testing.assert_close(out.reconstructed[m], block.dissolve[m].inverse(h))
    # dims whose expansions are powers of two: the dissolve map is orthogonal, its inverse exact
    for m in range(len(block.dims)):
        torch.testing.assert_close(block.dissolve[m].inverse(block.dissolve[m](v[m])), v[m])
