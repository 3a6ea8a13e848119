"""Trainable modality encoders and their registry.

An encoder maps a front-end's output (shape `in_shape`, without the batch axis) to a vector
V_m of `out_dim` features. Built-ins: `cnn` (2-D CNN for images), `audio-cnn` (2-D CNN over
log spectrograms), `mlp` (vectors: arrays, hashed text), `minilm` (pretrained all-MiniLM-L6-v2
over token ids, fine-tuned; the `text` extra). Register more with
`@register_encoder(name, kinds, description)` on `builder(in_shape, out_dim, width) -> nn.Module`.

An encoder of kind "tokens" names a `tokenizer(max_length)` factory: a text modality whose encoder
is such an encoder is tokenised with it at decode time (`composition.with_encoder_inputs`).
`pretrained=True` marks an encoder that starts from trained weights: the `frozen` / `finetune`
regimes use those weights instead of a unimodal pre-training (`train.regimes`). `requires`
raises one clear error when an optional dependency is missing, before any data is decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError

DEFAULT_ENCODER = {"image": "cnn", "audio": "audio-cnn", "array": "mlp", "text": "mlp", "tokens": "minilm"}
DEFAULT_OUT_DIM = {"image": 128, "audio": 64, "array": 64, "text": 64, "tokens": 384}
POOLED = 4
DEFAULT_WIDTH = {"cnn": 16, "audio-cnn": 16, "mlp": 128}


@dataclass
class EncoderSpec:
    name: str
    kinds: tuple[str, ...]
    builder: Callable[..., nn.Module]
    description: str
    pretrained: bool = False
    tokenizer: Callable[[int], Callable] | None = None  # max_length -> text -> (2, L) int64 array
    requires: Callable[[], None] | None = None  # raises PMRFusionError when a dependency is missing

    def check_available(self) -> None:
        if self.requires is not None:
            self.requires()


_ENCODERS: dict[str, EncoderSpec] = {}


def register_encoder(
    name: str,
    kinds: tuple[str, ...],
    description: str,
    pretrained: bool = False,
    tokenizer: Callable[[int], Callable] | None = None,
    requires: Callable[[], None] | None = None,
):
    """Decorator: register `builder(in_shape, out_dim, width) -> nn.Module` under `name`."""
    if "tokens" in kinds and tokenizer is None:
        raise PMRFusionError(f"encoder '{name}' takes tokens: give its tokenizer(max_length) factory")

    def deco(builder):
        spec = EncoderSpec(name, tuple(kinds), builder, description, pretrained, tokenizer, requires)
        _ENCODERS[name] = spec
        return builder

    return deco


def available_encoders() -> dict[str, EncoderSpec]:
    return dict(_ENCODERS)


def encoder_spec(name: str) -> EncoderSpec:
    if name not in _ENCODERS:
        raise PMRFusionError(f"unknown encoder '{name}': use one of {', '.join(sorted(_ENCODERS))}")
    return _ENCODERS[name]


def build_encoder(name: str, in_shape: tuple[int, ...], out_dim: int, width: int = 32) -> nn.Module:
    """Build a registered encoder; the module gets an `out_dim` attribute."""
    encoder_spec(name).check_available()
    if out_dim < 1 or width < 1:
        raise PMRFusionError(f"encoder '{name}': out_dim and width must be >= 1, got {out_dim}, {width}")
    enc = _ENCODERS[name].builder(tuple(in_shape), int(out_dim), int(width))
    enc.out_dim = int(out_dim)
    return enc


class ConvEncoder(nn.Module):
    """Three 3x3 conv + ReLU blocks (width, 2w, 2w), 2x2 max-pool after the first two,
    average pooling to a 4 x 4 map (keeps where a pattern is: time and frequency for
    spectrograms), then a linear map to `out_dim`."""

    def __init__(self, in_shape: tuple[int, ...], out_dim: int, width: int):
        super().__init__()
        if len(in_shape) != 3:
            raise PMRFusionError(f"a 2-D CNN encoder needs (C, H, W) inputs, got {in_shape}")
        c = in_shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(POOLED), nn.Flatten(),
        )  # fmt: skip
        self.proj = nn.Linear(2 * width * POOLED * POOLED, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.features(x))


class MLPEncoder(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], out_dim: int, width: int):
        super().__init__()
        d = int(torch.tensor(in_shape).prod())
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(d, width), nn.ReLU(), nn.Linear(width, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@register_encoder("cnn", ("image",), "3-layer 2-D CNN (width, 2w, 2w), 4x4 average pool, linear")
def _cnn(in_shape, out_dim, width):
    return ConvEncoder(in_shape, out_dim, width)


@register_encoder("audio-cnn", ("audio",), "3-layer 2-D CNN over the log-STFT (1, F, T)")
def _audio_cnn(in_shape, out_dim, width):
    return ConvEncoder(in_shape, out_dim, width)


@register_encoder("mlp", ("array", "text", "image", "audio"), "flatten, Linear(width), ReLU, Linear")
def _mlp(in_shape, out_dim, width):
    return MLPEncoder(in_shape, out_dim, width)


def _minilm_tokenizer(max_length: int):
    from pmrfusion.modules.text_encoder import MiniLMTokenizer

    return MiniLMTokenizer(max_length)


def _require_minilm() -> None:
    from pmrfusion.modules.text_encoder import require_minilm

    require_minilm()


@register_encoder(
    "minilm",
    ("tokens",),
    "pretrained all-MiniLM-L6-v2 (offline, [text] extra), mean-pooled 384-d, linear to out_dim if != 384",
    pretrained=True,
    tokenizer=_minilm_tokenizer,
    requires=_require_minilm,
)
def _minilm(in_shape, out_dim, width):
    from pmrfusion.modules.text_encoder import MiniLMEncoder

    if len(in_shape) != 2 or in_shape[0] != 2:
        raise PMRFusionError(f"encoder 'minilm' takes (2, L) token inputs [ids; mask], got {in_shape}")
    return MiniLMEncoder(out_dim)


__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_OUT_DIM",
    "DEFAULT_WIDTH",
    "ConvEncoder",
    "EncoderSpec",
    "MLPEncoder",
    "available_encoders",
    "build_encoder",
    "encoder_spec",
    "register_encoder",
]
