"""Back-end mechanisms (cmmp, perceiver, mbt, umoe, srht) and PMR's preservation behind every back-end:
CMMP's classifier reads the mean projection and its InfoNCE aligns paired embeddings; Perceiver
latents read every modality and only through cross-attention; MBT modalities exchange information
only through the bottleneck (the mean of the per-modality copies); UMoE routes tokens top-k by a
non-uniform router, its balance loss balances and its CMMP head reads the mixed views (MoE alone:
a concat head); SRHT maps are dense Hadamard mixes."""

import math

import pytest
import torch
import torch.nn.functional as F

from pmrfusion.data.tensors import TensorSplit
from pmrfusion.methods import available_methods, build_method
from pmrfusion.methods.base import option_names
from pmrfusion.modules.moe import SparseMoE
from pmrfusion.train.trainer import TrainConfig, seed_everything, train

torch.set_num_threads(1)

DIMS = {"a": 6, "b": 5}
SMALL = dict(hidden=16, embed_dim=8, proj_hidden=0, token_dim=8, heads=2)


def _small(name, **over):
    fields = set(option_names(name))  # the options the method reads
    return {k: v for k, v in {**SMALL, **over}.items() if k in fields}


def _classes(n=240, seed=0):
    """4 classes; a tells y // 2, b tells y % 2 (each modality alone: at most 50%)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    a = torch.randn(n, 6, generator=g)
    b = torch.randn(n, 5, generator=g)
    a[:, 0] += 2.0 * (2 * (y // 2) - 1)
    b[:, 0] += 2.0 * (2 * (y % 2) - 1)
    return TensorSplit({"a": a, "b": b}, y, torch.arange(n))


def _paired(n=240, seed=0):
    """Both modalities are noisy linear images of one latent per sample (retrieval pairs)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=g)
    y = (z[:, 0] > 0).long() + 2 * (z[:, 1] > 0).long()
    a = z @ torch.randn(4, 6, generator=g) + 0.1 * torch.randn(n, 6, generator=g)
    b = z @ torch.randn(4, 5, generator=g) + 0.1 * torch.randn(n, 5, generator=g)
    return TensorSplit({"a": a, "b": b}, y, torch.arange(n))


def _x(rows=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(rows, d, generator=g) for m, d in DIMS.items()}


# ----------------------------------------------------------------------------------------- CMMP


def _info_nce(a, b, scale):
    logits = scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()
    t = torch.arange(len(a))
    return (F.cross_entropy(logits, t) + F.cross_entropy(logits.t(), t)) / 2


def test_cmmp_classifies_the_mean_projection_and_its_aux_is_infonce_of_the_projections():
    torch.manual_seed(0)
    model = build_method("cmmp", DIMS, 4, **_small("cmmp")).eval()
    x = _x()
    with torch.no_grad():
        out = model(x)
        proj = [p(x[m]) for p, m in zip(model.backend.projector.projections, model.modalities)]
        torch.testing.assert_close(out.logits, model.backend.head((proj[0] + proj[1]) / 2))
        for m, p in zip(model.modalities, proj):
            torch.testing.assert_close(out.embeddings[m], p)
        scale = model.backend.projector.log_scale.exp()
        assert float(out.aux_losses["contrastive"]) == pytest.approx(float(_info_nce(*proj, scale)), rel=1e-5)
    assert model.loss_weights == {"contrastive": 1.0}


def _retrieval_at_1(model, data):
    model.eval()
    with torch.no_grad():
        e = model(data.features).embeddings
    s = F.normalize(e["a"], dim=-1) @ F.normalize(e["b"], dim=-1).t()
    return float((s.argmax(1) == torch.arange(len(s))).float().mean())


@pytest.mark.parametrize("name", ["cmmp", "rg-cmmp"])
def test_contrastive_loss_aligns_paired_embeddings(name):
    """With the InfoNCE term (weight 1) the contrastive loss falls and a's embedding retrieves its own
    b far better than with weight 0 (same seed otherwise)."""
    data = _paired()
    r1, hist = {}, {}
    for w in (1.0, 0.0):
        seed_everything(0)
        m = build_method(name, DIMS, 4, **_small(name, contrast_weight=w))
        hist[w] = train(m, data, None, TrainConfig(epochs=10, batch_size=48, lr=3e-3)).history
        r1[w] = _retrieval_at_1(m, data)
    assert hist[1.0][-1]["contrastive"] < 0.5 * hist[1.0][0]["contrastive"]
    assert r1[1.0] > 0.1 and r1[1.0] > 3 * r1[0.0], r1


# ------------------------------------------------------------------------------------ Perceiver


def _backend_views(model, x):
    """The back-end's inputs: the raw views alone, T_m behind PMR (G-structure)."""
    views = [x[m] for m in model.modalities]
    if not hasattr(model, "pmr"):
        return views
    return model.backend_inputs(model.pmr(views, reconstruct=False))[0]


@pytest.mark.parametrize("name", ["perceiver", "sg-perceiver"])
def test_perceiver_latents_read_every_modality_only_through_cross_attention(name):
    torch.manual_seed(0)
    model = build_method(name, DIMS, 4, **_small(name)).eval()
    enc = model.backend.encoder
    with torch.no_grad():
        views = _backend_views(model, _x())
        base = enc(views)
        for i in range(len(views)):
            moved = enc([v + 1.0 if j == i else v for j, v in enumerate(views)])
            assert float((moved - base).abs().max()) > 1e-3, i  # every modality reaches the latents
        enc.cross.out_proj.weight.zero_()
        enc.cross.out_proj.bias.zero_()
        cut = enc(views)
    torch.testing.assert_close(cut, cut[:1].expand_as(cut))  # no cross-attention: input-independent


# ------------------------------------------------------------------------------------------ MBT


def _record_layers(enc):
    seen = {}

    def hook(key):
        def fn(module, args, output):
            seen[key] = (args[0].detach().clone(), output.detach().clone())

        return fn

    handles = [
        layer.register_forward_hook(hook((d, i)))
        for d, per in enumerate(enc.layers)
        for i, layer in enumerate(per)
    ]
    return seen, handles


@pytest.mark.parametrize("name", ["mbt", "rg-mbt"])
def test_mbt_modalities_exchange_only_through_the_mean_bottleneck(name):
    """Changing a leaves b's first layer untouched; b's second layer sees a only in its bottleneck
    tokens, which are the mean of the per-modality bottleneck outputs of the first layer."""
    torch.manual_seed(0)
    model = build_method(name, DIMS, 4, **_small(name, depth=2)).eval()
    enc = model.backend.encoder
    T = enc.tokens_per_modality
    x = _x()
    runs = []
    for feats in (x, {**x, "a": x["a"] + 1.0}):
        seen, handles = _record_layers(enc)
        with torch.no_grad():
            logits = model(feats).logits
        for h in handles:
            h.remove()
        runs.append((seen, logits))
    (s0, l0), (s1, l1) = runs
    for s in (s0, s1):
        for i in range(2):
            torch.testing.assert_close(s[(1, i)][0][:, :T], s[(0, i)][1][:, :T])  # own tokens carried on
        shared = (s[(0, 0)][1][:, T:] + s[(0, 1)][1][:, T:]) / 2
        for i in range(2):
            torch.testing.assert_close(s[(1, i)][0][:, T:], shared)  # the bottleneck is the mean
    torch.testing.assert_close(s1[(0, 1)][0], s0[(0, 1)][0])
    torch.testing.assert_close(s1[(0, 1)][1], s0[(0, 1)][1])  # layer 1 of b: no path from a
    torch.testing.assert_close(s1[(1, 1)][0][:, :T], s0[(1, 1)][0][:, :T])
    assert float((s1[(1, 1)][0][:, T:] - s0[(1, 1)][0][:, T:]).abs().max()) > 1e-4  # a reaches b's bottleneck
    assert float((s1[(1, 1)][1][:, :T] - s0[(1, 1)][1][:, :T]).abs().max()) > 1e-4  # ... and b's tokens
    assert float((l1 - l0).abs().max()) > 1e-4


# ----------------------------------------------------------------------------------------- UMoE


def test_sparse_moe_is_shared_experts_plus_renormalised_top_k_routed_experts():
    torch.manual_seed(0)
    moe = SparseMoE(5, 7, num_experts=4, top_k=2, num_shared=1)
    x = torch.randn(3, 6, 5)
    flat = x.reshape(-1, 5)
    with torch.no_grad():
        probs = torch.softmax(flat @ moe.router.weight.t(), -1)
        want = moe.shared[0](flat)
        for r in range(len(flat)):
            top = probs[r].topk(2)
            for p, e in zip(top.values / top.values.sum(), top.indices.tolist()):
                want[r] = want[r] + p * moe.experts[e](flat[r : r + 1])[0]
        torch.testing.assert_close(moe(x), want.reshape(x.shape), rtol=1e-5, atol=1e-6)
    # load balance: E * sum_i f_i p_i - 1 with f the share of (token, slot) assignments
    top_i = probs.topk(2, -1).indices
    f = torch.bincount(top_i.reshape(-1), minlength=4).float() / top_i.numel()
    assert float(moe.aux_loss.detach()) == pytest.approx(float(4 * (f * probs.mean(0)).sum() - 1), abs=1e-6)


def _record_routing(logits, routed):
    def hook(module, args, out):  # a new MoE pass (sg-umoe also mixes "modality m alone" inputs)
        logits.append(out.detach())
        routed.clear()

    return hook


@pytest.mark.parametrize("name", ["umoe", "sg-umoe", "sg-moe"])
def test_umoe_router_is_token_dependent_and_not_uniform(name):
    """Router probabilities differ between tokens and from 1/E, and tokens reach different experts
    (the last MoE pass of a forward: the one on the full inputs)."""
    torch.manual_seed(0)
    model = build_method(name, DIMS, 4, **_small(name)).eval()
    moe = model.backend.moe
    logits, routed = [], {}
    hooks = [moe.router.register_forward_hook(_record_routing(logits, routed))]
    for e, expert in enumerate(moe.experts):
        hooks.append(expert.register_forward_hook(lambda mod, a, out, e=e: routed.update({e: len(a[0])})))
    with torch.no_grad():
        model(_x(16))
    for h in hooks:
        h.remove()
    probs = logits[-1].softmax(-1)  # (B * M, E)
    assert probs.shape == (16 * 2, 4)
    assert float((probs - 0.25).abs().max()) > 0.05
    assert float(probs.std(0).max()) > 1e-2
    assert sum(routed.values()) == 16 * 2 * 2  # top-2: every token reaches two routed experts
    assert len(routed) >= 3  # ... not the same two for every token (one may be in every pair)


def test_umoe_load_balance_loss_balances_the_routing():
    """On `moe` (the MoE stage umoe shares, without the CMMP head, whose routing here stays
    balanced even at weight 0), the balance loss ends far lower with weight 1 than with 0."""
    data = _classes()
    ends, states = {}, {}
    for w in (1.0, 0.01, 0.0):
        seed_everything(0)
        m = build_method("moe", DIMS, 4, **_small("moe", balance_weight=w))
        hist = train(m, data, None, TrainConfig(epochs=10, batch_size=48, lr=3e-3)).history
        assert hist[0]["load_balance"] > 0
        ends[w], states[w] = hist[-1]["load_balance"], m.state_dict()
    assert ends[1.0] < 0.5 * ends[0.0], ends
    assert any(not torch.equal(states[0.01][k], states[0.0][k]) for k in states[0.0])  # default weight acts


def _moe_mixed(backend, tokens):
    """A residual sparse-MoE pass on (B, M, l*) tokens: umoe pre-norms them (RMSNorm), moe not."""
    if backend.norm is None:
        return tokens + backend.moe(tokens)
    rms = tokens.pow(2).mean(-1, keepdim=True) + torch.finfo(tokens.dtype).eps
    return tokens + backend.moe(tokens * torch.rsqrt(rms) * backend.norm.weight)


def _pmr(model, x):
    return model.pmr([x[m] for m in model.modalities], reconstruct=False)


@pytest.mark.parametrize(
    "name, routing, placement",
    [("umoe", None, "views"), ("rg-umoe", "g-structure", "shared"), ("sg-umoe", "g-structure", "shared"),
     ("rg-umoe", "full", "z")],
)  # fmt: skip
def test_umoe_is_rg_cmmp_with_a_sparse_moe_on_the_shared_output(name, routing, placement):
    """The paper's rG-UMoE is rG-CMMP + a sparse MoE at PMR's shared output: the CMMP classifier
    reads the mean projection (G-structure: of T_m, with the mean of the MoE-mixed S_m beside it;
    full routing: of [mixed S_m ; T_m]; alone: of the mixed linear maps of the views), and the aux
    losses are InfoNCE + load balance."""
    from pmrfusion.methods.backends import CMMPBackend

    torch.manual_seed(0)
    extra = {} if routing is None else {"routing": routing}
    model = build_method(name, DIMS, 4, **_small(name, **extra)).eval()
    backend = model.backend
    assert isinstance(backend, CMMPBackend) and backend.placement == placement
    projections = backend.projector.projections
    x = _x()
    with torch.no_grad():
        out = model(x)
        side = []
        if placement == "views":
            tokens = torch.stack([p(x[m]) for p, m in zip(backend.inputs, model.modalities)], 1)
            views = list(_moe_mixed(backend, tokens).unbind(1))
        elif placement == "shared":
            rec = _pmr(model, x)
            views = rec.specific
            side = [_moe_mixed(backend, torch.stack(rec.shared, 1)).mean(1)]
        else:
            z, ls = _pmr(model, x).fused, min(DIMS.values())
            mixed = _moe_mixed(backend, torch.stack([v[:, :ls] for v in z], 1))
            views = [torch.cat([mixed[:, i], v[:, ls:]], -1) for i, v in enumerate(z)]
        proj = [p(v) for p, v in zip(projections, views)]
        torch.testing.assert_close(out.logits, backend.head(torch.cat([(proj[0] + proj[1]) / 2, *side], -1)))
        if name == "umoe":  # alone the embeddings are the projections (behind PMR: modality m alone)
            want = float(_info_nce(*proj, backend.projector.logit_scale))
            assert float(out.aux_losses["contrastive"]) == pytest.approx(want, rel=1e-5)
    assert {"contrastive", "load_balance"} <= set(out.aux_losses)
    assert model.loss_weights["contrastive"] == 1.0 and model.loss_weights["load_balance"] == 0.01


def test_umoe_pre_norm_makes_the_experts_see_the_same_tokens_at_any_scale():
    """UMoE's MoE reads RMSNorm(S_m): scaling the shared parts by 50 leaves the routing and the
    expert output unchanged (so only the residual grows); `moe` (no norm) routes them otherwise."""
    for name, normed in (("rg-umoe", True), ("rg-moe", False)):
        torch.manual_seed(0)
        model = build_method(name, DIMS, 4, **_small(name)).eval()
        backend = model.backend
        assert (backend.norm is not None) == normed
        tokens = torch.randn(16, 2, min(DIMS.values()), generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            small = backend.moe_residual(tokens) - tokens
            large = backend.moe_residual(50 * tokens) - 50 * tokens
        if normed:
            torch.testing.assert_close(large, small, rtol=1e-4, atol=1e-5)
        else:
            assert float((large - small).abs().max()) > 1.0


@pytest.mark.parametrize("pair", [("umoe", "moe"), ("rg-umoe", "rg-moe")])
def test_umoe_differs_from_the_moe_only_variant_which_is_the_former_umoe(pair):
    """`moe` (the pre-issue-21 `umoe`) classifies [the MoE-mixed linear maps of its inputs ; S̄]
    (its inputs: the views alone, T_m behind PMR) by a concat head, with no CMMP part; `umoe` is
    the CMMP head with the MoE on the shared output: other parameters, aux losses and logits."""
    umoe_name, moe_name = pair
    x = _x()
    out = {}
    for name in pair:
        torch.manual_seed(0)
        model = build_method(name, DIMS, 4, **_small(name)).eval()
        with torch.no_grad():
            out[name] = model(x)
            if name == moe_name:
                backend = model.backend
                views, side = [x[m] for m in model.modalities], []
                if hasattr(model, "pmr"):
                    rec = _pmr(model, x)
                    views, side = rec.specific, [torch.stack(rec.shared).mean(0)]
                tokens = torch.stack([p(v) for p, v in zip(backend.inputs, views)], 1)
                want = backend.head(torch.cat([_moe_mixed(backend, tokens).flatten(1), *side], -1))
                torch.testing.assert_close(out[name].logits, want)
        if name == moe_name:
            assert not any("projector" in n for n, _ in model.named_parameters())
            assert "contrastive" not in out[name].aux_losses and "contrastive" not in model.loss_weights
    assert float((out[umoe_name].logits - out[moe_name].logits).abs().max()) > 1e-3


def test_rg_umoe_contrastive_loss_aligns_paired_embeddings():
    """As for rg-cmmp: with the InfoNCE term, a's embedding retrieves its own b far better."""
    data = _paired()
    r1, hist = {}, {}
    for w in (1.0, 0.0):
        seed_everything(0)
        m = build_method("rg-umoe", DIMS, 4, **_small("rg-umoe", contrast_weight=w))
        hist[w] = train(m, data, None, TrainConfig(epochs=10, batch_size=48, lr=3e-3)).history
        r1[w] = _retrieval_at_1(m, data)
    assert hist[1.0][-1]["contrastive"] < 0.5 * hist[1.0][0]["contrastive"]
    assert r1[1.0] > 0.1 and r1[1.0] > 3 * r1[0.0], r1


# ----------------------------------------------------------------------------------------- SRHT


@pytest.mark.parametrize("name", ["sg-srht", "rg-srht"])
def test_srht_maps_are_parameter_free_dense_hadamard_mixes(name):
    """Every PMR map of the SRHT variant sends a basis vector e_j to a vector whose entries all have
    magnitude 1 / sqrt(out) (a subsampled, rescaled Hadamard column), is linear, and has no weights."""
    model = build_method(name, {"a": 12, "b": 7}, 3, hidden=16)
    pmr = model.pmr
    maps = [*pmr.dissolve, *pmr.shared_maps, *pmr.specific_maps]
    assert {n for n, _ in pmr.named_parameters()} == {"gains.0", "gains.1"}
    for f in maps:
        assert list(f.parameters()) == []
        y = f(torch.eye(f.in_dim))
        torch.testing.assert_close(y.abs(), torch.full_like(y, 1 / math.sqrt(y.shape[-1])))
        v = torch.randn(3, f.in_dim)
        torch.testing.assert_close(f(v), v @ y, rtol=1e-4, atol=1e-5)


# ---------------------------------------------- PMR's preservation behind every back-end (sG-X / rG-X)

PMR_METHODS = sorted(n for n in available_methods() if n.startswith(("sg-", "rg-")))


def _cos_loss(v, r):
    return sum((1 - F.cosine_similarity(a, b, dim=-1)).mean() for a, b in zip(v, r))


def _mse_loss(v, r):
    return sum(((a - b) ** 2).mean() for a, b in zip(v, r))


@pytest.mark.parametrize("name", PMR_METHODS)
def test_preservation_is_the_named_loss_and_trains_the_pmr_maps(name):
    data = _classes(120)
    x = {m: data.features[m][:32] for m in DIMS}
    torch.manual_seed(0)
    model = build_method(name, DIMS, 4, **_small(name)).train()
    out = model(x)
    pres = out.aux_losses["preserve"]
    assert float(pres.detach()) > 1e-3 and model.loss_weights["preserve"] == 1.0
    if not name.endswith("srht"):  # (SRHT: strict in the SRHT domain, tests/methods/test_pmr_fidelity.py)
        with torch.no_grad():
            rec = model.pmr(list(x.values())).reconstructed
        ref = (_mse_loss if name.startswith("sg-") else _cos_loss)(list(x.values()), rec)
        assert float(pres.detach()) == pytest.approx(float(ref), rel=1e-4)
    pres.backward()
    srht = name.endswith("srht")
    driven = list(model.pmr.gains) if srht else list(model.pmr.recon_maps.parameters())
    assert all(float(p.grad.abs().sum()) > 0 for p in driven)
    ends = {}
    for lam in (1.0, 0.0):
        seed_everything(0)
        m = build_method(name, DIMS, 4, **_small(name, lam=lam))
        lr = 3e-2 if srht else 3e-3  # SRHT: only diagonal gains to train
        hist = train(m, data, None, TrainConfig(epochs=6, batch_size=40, lr=lr)).history
        ends[lam] = hist[-1]["preserve"]
        if lam:
            assert hist[-1]["preserve"] < hist[0]["preserve"]
    assert ends[1.0] < 0.9 * ends[0.0], ends
