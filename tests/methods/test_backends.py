"""Back-ends (CMMP, Perceiver, MBT, UMoE), their PMR compositions, SRHT-PMR and ablations."""

import math

import pytest
import torch

from pmrfusion.methods import build_method
from pmrfusion.modules.moe import SparseMoE, load_balancing_loss, moe_expert_params
from pmrfusion.modules.reconfiguration import Reconfiguration
from pmrfusion.objectives.contrastive import info_nce, multi_info_nce

torch.set_num_threads(1)

SMALL = dict(hidden=16, embed_dim=8, proj_hidden=0, token_dim=8, heads=2, depth=1)


def _small(method):
    from pmrfusion.bench.runner import overrides_for

    return overrides_for(method, SMALL)


# forward/backward of every registered method on M = 2, 3, 6: tests/methods/test_every_method.py


def test_pmr_parameter_count_matches_table9():
    """Table 9 per modality: P_dis n l x l, P_shared b x l*, P_specific (nl - b) x l,
    P_recon l x (l + l*). The weights are tested exactly. Biases: nn.Linear carries one per
    *output* unit, so P_dis has n l (as in Table 9) and P_recon l (as in Table 9), but P_shared
    has l* and P_specific has l, where Table 9 prints the input widths b and nl - b. Also
    P_shared^(m) reads the *next* modality's b^(k) entries (eq. 5), so its weight is l* x b^(k);
    summed over modalities this equals Table 9's sum of b^(m) l*."""
    dims = [30, 17, 22]
    n, b = 4, 0.5
    blk = Reconfiguration(dims, n, b)
    ls = min(dims)
    bounds = [math.floor(b * n * d) for d in dims]
    total_table_weights = 0
    for m, d in enumerate(dims):
        k = (m + 1) % len(dims)
        assert blk.dissolve[m].weight.numel() == n * d * d and blk.dissolve[m].bias.numel() == n * d
        assert blk.shared_maps[m].weight.numel() == bounds[k] * ls and blk.shared_maps[m].bias.numel() == ls
        assert blk.specific_maps[m].weight.numel() == (n * d - bounds[m]) * d
        assert blk.specific_maps[m].bias.numel() == d
        assert blk.recon_maps[m].weight.numel() == d * (d + ls) and blk.recon_maps[m].bias.numel() == d
        total_table_weights += n * d * d + bounds[m] * ls + (n * d - bounds[m]) * d + d * (d + ls)
    weights = sum(p.numel() for name, p in blk.named_parameters() if name.endswith("weight"))
    assert weights == total_table_weights


def test_srht_pmr_has_no_pmr_parameters():
    model = build_method("rg-srht", {"a": 12, "b": 7}, 3, srht_gain=False)
    assert sum(p.numel() for p in model.pmr.parameters()) == 0
    gained = build_method("rg-srht", {"a": 12, "b": 7}, 3)
    assert sum(p.numel() for p in gained.pmr.parameters()) == 4 * (12 + 7)  # diagonal gains on H_m
    assert model.default_group_optimizers == {}


def test_moe_parameter_formula_e4():
    """E.4: 20 (l*)^2 expert weights for 4 routed + 1 shared expert. With SwiGLU experts
    (3 matrices) this holds for hidden 4/3 l* (the SwiGLU equivalent of appendix A's 2 l* FFN);
    E.4's bracket taken literally with hidden 8/3 l* sums to 40 (l*)^2."""
    ls = 48
    moe = SparseMoE(ls, 4 * ls // 3, num_experts=4, top_k=2, num_shared=1)
    assert moe.expert_parameters() == 20 * ls * ls == moe_expert_params(ls, 4 * ls // 3)
    assert sum(p.numel() for p in moe.parameters()) == 20 * ls * ls + 4 * ls  # + router (l* x 4)
    assert moe_expert_params(ls, 8 * ls // 3) == 40 * ls * ls
    # rg-umoe builds exactly this MoE on l* = min dims
    model = build_method("rg-umoe", {"a": 60, "b": ls}, 3)
    assert model.backend.moe.expert_parameters() == 20 * ls * ls


def test_load_balancing_zero_for_uniform_routing_and_positive_when_collapsed():
    E, T = 4, 8
    probs = torch.full((T, E), 1.0 / E)
    top = torch.arange(T).remainder(E).unsqueeze(1)  # every expert gets T/E tokens
    assert abs(float(load_balancing_loss(probs, top, E))) < 1e-6
    collapsed = torch.zeros(T, E)
    collapsed[:, 0] = 1.0
    assert float(load_balancing_loss(collapsed, torch.zeros(T, 1, dtype=torch.long), E)) == pytest.approx(
        E - 1
    )


def test_info_nce_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    s = 2.0
    # normalised: a = [1,0],[0,1]; b = [1,0],[1/sqrt2, 1/sqrt2]; logits = s * a b^T
    r = 1 / math.sqrt(2)
    L = [[s * 1.0, s * r], [0.0, s * r]]
    row = [
        -(L[0][0] - math.log(math.exp(L[0][0]) + math.exp(L[0][1]))),
        -(L[1][1] - math.log(math.exp(L[1][0]) + math.exp(L[1][1]))),
    ]
    col = [
        -(L[0][0] - math.log(math.exp(L[0][0]) + math.exp(L[1][0]))),
        -(L[1][1] - math.log(math.exp(L[0][1]) + math.exp(L[1][1]))),
    ]
    expected = 0.5 * (sum(row) / 2 + sum(col) / 2)
    assert float(info_nce(a, b, s)) == pytest.approx(expected, rel=1e-6)
    c = torch.randn(2, 2)
    three = (info_nce(a, b, s) + info_nce(a, c, s) + info_nce(b, c, s)) / 3
    assert float(multi_info_nce([a, b, c], s)) == pytest.approx(float(three), rel=1e-6)


def test_pmr_cmmp_embedding_uses_only_its_own_modality():
    """Changing the text must not change the image embedding (no pairing leak in retrieval)."""
    torch.manual_seed(0)
    model = build_method("rg-cmmp", {"img": 12, "txt": 7}, 3, routing="full", **_small("rg-cmmp")).eval()
    x = {"img": torch.randn(4, 12), "txt": torch.randn(4, 7)}
    y = {"img": x["img"], "txt": torch.randn(4, 7)}
    torch.testing.assert_close(model(x).embeddings["img"], model(y).embeddings["img"])
    assert not torch.allclose(model(x).embeddings["txt"], model(y).embeddings["txt"])
    # and it equals the mean projection of PMR's outputs with the text zeroed
    alone = model.pmr([x["img"], torch.zeros(4, 7)]).fused
    ref = torch.stack(model.backend.project(alone)).mean(0)
    torch.testing.assert_close(model(x).embeddings["img"], ref)
    # the preservation term equals the block's own reconstruction
    from pmrfusion.objectives.preservation import preservation_loss

    rec = model.pmr([x["img"], x["txt"]])
    want = preservation_loss("relaxed", [x["img"], x["txt"]], rec.reconstructed)
    assert "preserve" not in model(x).aux_losses  # inference does only inference
    torch.testing.assert_close(model.train()(x).aux_losses["preserve"], want)


def test_pmr_cmmp_g_structure_embeds_specific_parts():
    """Under the G-structure the back-end reads T_m, which depends on V_m alone."""
    torch.manual_seed(0)
    model = build_method("rg-cmmp", {"img": 12, "txt": 7}, 3, **_small("rg-cmmp")).eval()
    x = {"img": torch.randn(4, 12), "txt": torch.randn(4, 7)}
    y = {"img": x["img"], "txt": torch.randn(4, 7)}
    torch.testing.assert_close(model(x).embeddings["img"], model(y).embeddings["img"])
    rec = model.pmr([x["img"], x["txt"]])
    torch.testing.assert_close(model(x).embeddings["img"], model.backend.project(rec.specific)[0])


def test_ffn_ablation_is_parameter_matched():
    from pmrfusion.methods.ablations import pmr_params_per_modality

    dims = {"a": 40, "b": 24}
    ffn = build_method("ffn-concat", dims, 3)
    for f, target in zip(ffn.maps, pmr_params_per_modality(dims, 4, 0.5)):
        got = sum(p.numel() for p in f.parameters())
        assert abs(got - target) / target < 0.02


def test_analyses_smoke(tmp_path):
    import numpy as np

    from pmrfusion.analysis.pmr_analyses import cost, gradient_cosine
    from pmrfusion.data.dataset import MultimodalData

    recs, md = cost(
        {"a": 12, "b": 7}, 3, methods=("concat", "rg-srht", "rg-umoe"), batch=4, png=tmp_path / "c.png"
    )
    assert all(r["params"] > 0 and r["flops_per_sample"] > 0 for r in recs)
    assert "| rg-umoe |" in md and (tmp_path / "c.png").exists()
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    feats = {
        "a": rng.normal(size=(60, 12)).astype("float32"),
        "b": rng.normal(size=(60, 7)).astype("float32"),
    }
    data = MultimodalData("toy", feats, y, {"train": np.arange(48), "test": np.arange(48, 60)})
    recs, md = gradient_cosine(data, epochs=1, png=tmp_path / "g.png")
    dec_out = [r["cos"] for r in recs if r["variant"] == "decoupled" and r["where"] == "output"]
    assert dec_out and all(c == 0.0 for c in dec_out)  # preservation never reaches Z when decoupled
    assert all(-1.0 <= r["cos"] <= 1.0 for r in recs) and (tmp_path / "g.png").exists()
