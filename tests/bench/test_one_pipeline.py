"""One pipeline: both data kinds through the same prepare / batching / trainer / runner, method
variants in the runner, and a method's facts declared where it registers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pmrfusion.bench.runner import RunSpec, fit_method, run_grid
from pmrfusion.cli.options import split_list
from pmrfusion.data.dataset import MultimodalData
from pmrfusion.data.prepared import VECTOR, prepare
from pmrfusion.data.raw import ArraySource, RawMultimodalData, RawSplit
from pmrfusion.data.tensors import TensorSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import (
    OPTION_RANGES,
    classification_only_methods,
    method_config,
    parse_variant,
    register_method,
)
from pmrfusion.train.trainer import TrainConfig, predict_split

FAST = TrainConfig(epochs=2, batch_size=32, patience=5)


def _arrays(n: int = 120, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    a = rng.normal(size=(n, 6)).astype(np.float32) + y[:, None]
    b = rng.normal(size=(n, 4)).astype(np.float32) - y[:, None]
    return {"a": a, "b": b}, y


def _splits(n: int) -> dict[str, np.ndarray]:
    return {"train": np.arange(0, int(0.8 * n)), "test": np.arange(int(0.8 * n), n)}


@pytest.fixture(scope="module")
def both_kinds():
    feats, y = _arrays()
    vectors = MultimodalData("toy", feats, y, _splits(len(y)))
    rows = np.arange(len(y))
    source = ArraySource(feats, {m: rows for m in feats})
    kinds, shapes = {m: "array" for m in feats}, {m: x.shape[1:] for m, x in feats.items()}
    raw = RawMultimodalData("toy-raw", kinds, shapes, y, _splits(len(y)), source)
    return vectors, raw


def test_prepare_gives_one_contract_for_both_kinds(both_kinds):
    vectors, raw = both_kinds
    pv, pr = prepare(vectors, 0.15, 0), prepare(raw, 0.15, 0)
    assert isinstance(pv.train, TensorSplit) and isinstance(pr.train, RawSplit)
    assert pv.kinds == {"a": VECTOR, "b": VECTOR} and pr.kinds == {"a": "array", "b": "array"}
    assert not pv.raw and pr.raw and pv.scaler is not None and pr.stats is not None
    # the same seeded validation split whatever the kind
    assert np.array_equal(pv.val.index.numpy(), pr.val.rows)
    assert np.array_equal(pv.train.index.numpy(), pr.train.rows)
    # every split makes its own batches; the trainer reads nothing else
    for split in (pv.train, pr.train):
        epoch_batches = split.training_stream(9, seed=0, dropout=0.5)
        batches = [b for b, _ in epoch_batches(1)]
        assert len(split) == 81 and [len(b.labels) for b in batches] == [9] * 9
        assert all(b.present.any(1).all() for b in batches)  # dropout keeps one modality
        assert any(not b.present.all() for b in batches)


def test_one_runner_trains_both_kinds_and_names_the_regime(both_kinds):
    vectors, raw = both_kinds
    spec = RunSpec(["concat"], ("clean", "missing"), [0], train=FAST)
    feature_records = run_grid(vectors, spec)
    raw_records = run_grid(raw, spec)
    assert {r["condition"] for r in feature_records} == {r["condition"] for r in raw_records}
    assert all(r.get("regime") == "end-to-end" for r in raw_records)
    assert all("regime" not in r for r in feature_records)
    acc = [r["value"] for r in raw_records if r["condition"] == "clean" and r["metric"] == "accuracy"]
    assert acc[0] > 0.6  # three well-separated classes: the encoders learned


def test_the_runner_refuses_what_a_kind_does_not_support(both_kinds):
    vectors, raw = both_kinds
    with pytest.raises(PMRFusionError, match="not defined on raw inputs"):
        run_grid(raw, RunSpec(["concat"], ("conflict",), [0], train=FAST))
    with pytest.raises(PMRFusionError, match="raw inputs"):
        run_grid(raw, RunSpec(["cmmp"], seeds=[0], train=FAST, task="retrieval"))
    from pmrfusion.modules.composition import EncoderConfig

    with pytest.raises(PMRFusionError, match="raw inputs only"):
        run_grid(vectors, RunSpec(["concat"], seeds=[0], train=FAST, encoder=EncoderConfig()))
    with pytest.raises(PMRFusionError, match="splitting 'rcml' works on feature vectors"):
        run_grid(raw, RunSpec(["concat"], ("clean",), [0], train=FAST, splitting="rcml"))
    with pytest.raises(PMRFusionError, match="unknown splitting"):
        RunSpec(["concat"], splitting="kfold")
    with pytest.raises(PMRFusionError, match="not selected"):
        RunSpec(["concat"], method_train={"late": FAST})
    with pytest.raises(PMRFusionError, match="--methods lists concat more than once"):
        RunSpec(["concat", "late", "concat"])
    with pytest.raises(PMRFusionError, match="--seeds lists 1 more than once"):
        RunSpec(["concat"], seeds=[1, 1])
    from pmrfusion.train.trainer import seed_range

    with pytest.raises(PMRFusionError, match="at most 10000 seeds"):
        seed_range(2**32)


def test_rcml_is_a_splitting_policy_and_per_method_settings_of_the_one_runner(both_kinds):
    vectors, _ = both_kinds
    slow = dataclasses.replace(FAST, lr=1e-5)
    spec = RunSpec(["concat", "late"], ("clean",), [0, 1], train=FAST, splitting="rcml",
                   method_train={"late": slow}, method_options={"concat": {"hidden": 8}})  # fmt: skip
    seen = []
    records = run_grid(vectors, spec, skip={("late", 1)}, on_records=lambda m, s, r: seen.append((m, s)))
    assert seen == [("concat", 0), ("late", 0), ("concat", 1)]  # seeds x methods, the skipped pair left out
    assert {r["method"] for r in records} == {"concat", "late"}  # per-method options keep the name
    from pmrfusion.data.rcml import prepare_rcml

    p = prepare_rcml(vectors, 1)
    assert p.val is None and len(p.train) == int(0.8 * vectors.num_samples)
    model, _ = fit_method("concat", p, 1, {"hidden": 8}, FAST)
    clean = [r["value"] for r in records
             if r["method"] == "concat" and r["seed"] == 1 and r["metric"] == "accuracy"]  # fmt: skip
    expected = float((predict_split(model, p.test).argmax(-1) == p.test.labels).double().mean())
    assert clean == [pytest.approx(expected, abs=1e-12)]  # the same model: same seed, split and options


def test_validation_goes_through_the_split_in_order(both_kinds):
    vectors, raw = both_kinds
    for p in (prepare(vectors, 0.15, 0), prepare(raw, 0.15, 0)):
        model, _ = fit_method("late", p, 0, {}, FAST)
        logits = predict_split(model, p.test)
        assert logits.shape == (len(p.test), 3)
        assert torch.equal(logits, predict_split(model, p.test))


def test_method_variants_are_typed_checked_and_named_in_records(both_kinds):
    vectors, _ = both_kinds
    expected = ("sg-concat", {"n": 2, "pmr_optimizer": "sgd"})
    assert parse_variant("sg-concat[n=2, pmr_optimizer=sgd]") == expected
    assert parse_variant("concat") == ("concat", {})
    for bad, why in (("sg-concat[n=0]", "out of range"), ("sg-concat[m=2]", "no option"),
                     ("nope[n=2]", "unknown method"), ("sg-concat[n=2", "name\\[key=value")):  # fmt: skip
        with pytest.raises(PMRFusionError, match=why):
            parse_variant(bad)
    assert split_list("concat,sg-concat[n=2,b=0.25],late") == ["concat", "sg-concat[n=2,b=0.25]", "late"]
    variant = run_grid(vectors, RunSpec(["sg-concat[n=2]"], ("clean",), [0], train=FAST))
    shared = run_grid(vectors, RunSpec(["sg-concat"], ("clean",), [0], {"n": 2}, train=FAST))
    default = run_grid(vectors, RunSpec(["sg-concat"], ("clean",), [0], train=FAST))
    assert {r["method"] for r in variant} == {"sg-concat[n=2]"}
    assert [r["value"] for r in variant] == [r["value"] for r in shared]  # the variant is n=2
    assert [r["value"] for r in variant] != [r["value"] for r in default]


def test_a_numeric_option_without_a_range_fails_at_registration():
    @dataclasses.dataclass
    class Unranged:
        some_new_weight: float = 1.0

    assert "some_new_weight" not in OPTION_RANGES
    with pytest.raises(TypeError, match="declare no allowed range"):
        register_method("unranged-test", Unranged, "never registered")
    with pytest.raises(PMRFusionError, match="unknown method"):
        method_config("unranged-test")


def test_classification_only_is_declared_by_the_methods():
    only = classification_only_methods()
    assert {"qmf", "pdf", "tmc", "ecml", "drfuse", "iid-l", "iid-q", "iid-p"} == set(only)
    assert all(isinstance(why, str) and why for why in only.values())


@pytest.mark.parametrize("method", ["cmmp", "perceiver", "mbt", "umoe", "sg-cmmp", "rg-umoe"])
def test_a_shared_config_field_a_method_does_not_declare_has_no_effect_on_it(method):
    """Back-ends share one config class: the fields a back-end does not declare as options really are
    unused (changing one builds the same model), so refusing them (`--set num_experts=8` for cmmp)
    refuses nothing the method reads."""
    from pmrfusion.methods.base import available_methods, option_names

    spec = available_methods()[method]
    default = method_config(method)
    unused = [f for f in dataclasses.fields(default) if f.name not in option_names(method)]
    assert unused
    dims, x = {"a": 6, "b": 4}, {"a": torch.randn(5, 6), "b": torch.randn(5, 4)}

    def built(cfg):
        torch.manual_seed(0)
        model = spec.builder(dims, 3, cfg).eval()
        return model, model(x, None).logits

    ref, ref_out = built(default)
    for f in unused:
        value = getattr(default, f.name)
        other = (not value) if isinstance(value, bool) else value + (1 if isinstance(value, int) else 0.05)
        model, out = built(dataclasses.replace(default, **{f.name: other}))
        shapes = {k: v.shape for k, v in model.state_dict().items()}
        assert shapes == {k: v.shape for k, v in ref.state_dict().items()}, f.name
        assert torch.equal(out, ref_out) and model.loss_weights == ref.loss_weights, f.name
    with pytest.raises(PMRFusionError, match="has no option"):
        method_config(method, **{unused[0].name: other})
