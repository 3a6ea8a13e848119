"""The offline MiniLM sentence encoder on real MOSI transcripts (needs the `text` extra)."""

import copy
import importlib.util

import numpy as np
import pytest
import torch

from pmrfusion.errors import PMRFusionError
from pmrfusion.modules import text_encoder
from pmrfusion.modules.text_encoder import SentenceEncoder, embed_texts

HAS_TEXT = all(importlib.util.find_spec(m) for m in ("all_minilm_l6_v2", "transformers", "tokenizers"))
needs_text = pytest.mark.skipif(
    not HAS_TEXT, reason="text extra not installed: pip install 'pmrfusion[text]'"
)

# utterances.tsv rows 0..3 (one video): two positive, two about "sad parts"
GOOD, SAD, SADS, AWESOME = (
    "ANYHOW IT WAS REALLY GOOD",
    "THERE IS SAD PART",
    "A LOT OF SAD PARTS",
    "BUT IT WAS REALLY REALLY AWESOME",
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("pmrfusion-cache")


@pytest.fixture(scope="module")
def encoder(cache):
    torch.manual_seed(0)
    return SentenceEncoder(cache, freeze=True).eval()


@needs_text
def test_shape_norm_determinism_and_similarity(encoder, data_root):
    from pmrfusion.data.mosi import read_transcripts

    assert read_transcripts(data_root / "mosi")[:4] == [GOOD, SAD, SADS, AWESOME]
    with torch.no_grad():
        e = encoder([GOOD, SAD, SADS, AWESOME])
        again = encoder([GOOD, SAD, SADS, AWESOME])
        alone = encoder([SAD])  # padding in the batch must not change a sentence's embedding
    assert e.shape == (4, 384) and torch.equal(e, again)
    assert torch.allclose(e.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(alone[0], e[1], atol=1e-5)
    cos = e @ e.T
    assert cos[0, 3] > cos[0, 2] + 0.1 and cos[1, 2] > cos[1, 3] + 0.1


@needs_text
def test_cache_on_disk_and_fine_tuning(encoder, cache):
    texts = [GOOD, SAD, AWESOME]
    first = embed_texts(texts, cache, encoder=encoder)
    files = list((cache / "embeddings").glob("minilm-*.npy"))
    assert len(files) == 1 and np.array_equal(np.load(files[0]), first)
    assert np.array_equal(embed_texts(texts, cache), first)  # served from the cache file
    assert len(list((cache / "embeddings").glob("*.npy"))) == 1
    tuned = copy.deepcopy(encoder).train()  # fine-tunable: one step moves the encoder's own weights
    tuned.bert.requires_grad_(True)
    head = torch.nn.Linear(tuned.out_dim, 1)
    before = tuned.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    opt = torch.optim.SGD([*tuned.parameters(), *head.parameters()], lr=0.1)
    loss = (head(tuned(texts)).squeeze(-1) - torch.tensor([2.4, -1.2, 2.2])).abs().mean()
    loss.backward()
    opt.step()
    assert not torch.equal(before, tuned.bert.encoder.layer[0].attention.self.query.weight)
    assert all(p.grad is None for p in encoder.parameters())  # the frozen one got none


def test_missing_extra_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        text_encoder.importlib.util,
        "find_spec",
        lambda n, *a: None if n == "all_minilm_l6_v2" else real(n, *a),
    )
    with pytest.raises(PMRFusionError, match=r"pip install 'pmrfusion\[text\]'"):
        text_encoder.minilm_dir()


def _raw_text_data():
    import numpy as np

    from pmrfusion.data.raw import ArraySource, RawMultimodalData

    rows = np.arange(6)
    source = ArraySource({"vec": np.zeros((6, 2), np.float32)}, {"vec": rows}, {"text": [GOOD, SAD] * 3})
    kinds, shapes = {"vec": "array", "text": "text"}, {"vec": (2,), "text": (256,)}
    return RawMultimodalData("t", kinds, shapes, rows % 2, {"train": rows[:4], "test": rows[4:]}, source)


@pytest.mark.parametrize("missing", ["all_minilm_l6_v2", "transformers"])
def test_minilm_encoder_without_the_extra_is_one_line_before_training(monkeypatch, missing):
    from pmrfusion.bench.runner import encoder_config_for
    from pmrfusion.modules.composition import with_encoder_inputs
    from pmrfusion.modules.encoders import build_encoder

    real = importlib.util.find_spec
    monkeypatch.setattr(
        text_encoder.importlib.util, "find_spec", lambda n, *a: None if n == missing else real(n, *a)
    )
    data = _raw_text_data()
    assert encoder_config_for(data, "text=mlp", "end-to-end").encoders == {"text": "mlp"}  # no extra needed
    for call in (
        lambda: encoder_config_for(data, "text=minilm", "end-to-end"),  # the CLI's check, before loading
        lambda: with_encoder_inputs(data, {"text": "minilm"}),
        lambda: build_encoder("minilm", (2, 8), 384),
    ):
        with pytest.raises(PMRFusionError, match=r"pip install 'pmrfusion\[text\]'") as e:
            call()
        assert "\n" not in str(e.value) and "MiniLM" in str(e.value)
