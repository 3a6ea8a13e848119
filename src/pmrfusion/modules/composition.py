"""Per-modality encoders for raw inputs: front-end + backbone, chosen by name, with their settings.

`EncoderConfig` says which encoder each modality gets, how wide, and the training regime;
`default_encoders` builds them (front-end statistics from the training rows). Composing them with
a fusion method into one model is `pmrfusion.methods.encoded.build_model`.

Which encoder a modality gets (`encoder_names`): the one asked for (`--encoders m=name`), else the
dataset's default for it (`RawMultimodalData.encoder_defaults`), else its kind's default. A text
modality whose encoder takes tokens (`minilm`) is tokenised at decode time (`with_encoder_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from pmrfusion.data.raw import LoaderSettings, RawMultimodalData, RawSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.modules.encoders import (
    DEFAULT_ENCODER,
    DEFAULT_OUT_DIM,
    DEFAULT_WIDTH,
    available_encoders,
    build_encoder,
    encoder_spec,
)
from pmrfusion.modules.frontends import FrontendConfig, ModalityStats, build_frontend, fit_stats


class ModalityEncoder(nn.Module):
    """Front-end (raw -> normalised input) followed by a trainable backbone (-> V_m)."""

    def __init__(self, frontend: nn.Module, backbone: nn.Module):
        super().__init__()
        self.frontend, self.backbone = frontend, backbone
        self.out_dim = int(backbone.out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(self.frontend(x))

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The backbone's pretrained weights (fine-tuned with their own learning rate), if any."""
        fn = getattr(self.backbone, "pretrained_parameters", None)
        return list(fn()) if fn is not None else []


def split_pretrained(modules) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(pretrained weights, the other parameters) of some encoders."""
    modules = list(modules)
    pre = [p for e in modules if hasattr(e, "pretrained_parameters") for p in e.pretrained_parameters()]
    ids = {id(p) for p in pre}
    return pre, [p for e in modules for p in e.parameters() if id(p) not in ids]


REGIMES = ("end-to-end", "frozen", "finetune")


@dataclass
class EncoderConfig:
    """Which encoders, how wide, and the regime; defaults follow each modality's kind.

    Regimes (PMR section 4): `end-to-end` trains encoders jointly with the fusion method;
    `frozen` first trains each encoder alone with a linear head on its modality, then fixes it
    while the fusion trains; `finetune` does the same pre-training, then trains everything.
    """

    regime: str = "end-to-end"
    encoders: dict[str, str] = field(default_factory=dict)  # modality -> registered encoder
    out_dims: dict[str, int] | None = None
    widths: dict[str, int] | None = None
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    loader: LoaderSettings = field(default_factory=LoaderSettings)
    encoder_lr: float | None = None  # None: TrainConfig.lr
    pretrained_lr: float = 5e-5  # AdamW learning rate of pretrained weights (MiniLM's BERT) when fine-tuned
    pretrain_epochs: int | None = None  # None: TrainConfig.epochs
    max_length: int = 128  # tokens per text for token encoders (minilm); padding is trimmed per batch

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise PMRFusionError(f"unknown regime '{self.regime}': use one of {', '.join(REGIMES)}")


def parse_encoder_spec(text: str | None) -> dict[str, str]:
    """'image=cnn,audio=audio-cnn' -> {'image': 'cnn', 'audio': 'audio-cnn'}."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise PMRFusionError(f"--encoders expects modality=encoder items, got '{item}'")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def encoder_names(data: RawMultimodalData, spec: dict[str, str] | None = None) -> dict[str, str]:
    """Modality -> registered encoder: `spec`, else the dataset's default, else the kind's; checked
    against the modality's kind (token encoders take text or tokens, only they take tokens)."""
    spec = spec or {}
    unknown = sorted(set(spec) - set(data.modalities))
    if unknown:
        raise PMRFusionError(f"--encoders names unknown modalities {unknown}; dataset has {data.modalities}")
    names = {}
    for m in data.modalities:
        kind = data.kinds[m]
        name = spec.get(m) or data.encoder_defaults.get(m) or DEFAULT_ENCODER[kind]
        es = encoder_spec(name)
        takes_tokens = "tokens" in es.kinds
        if kind == "tokens" and not takes_tokens:
            token_encoders = sorted(n for n, e in available_encoders().items() if "tokens" in e.kinds)
            raise PMRFusionError(
                f"modality '{m}' holds token ids: encoder '{name}' cannot take them; "
                f"use one of {token_encoders}"
            )
        if takes_tokens and kind not in ("text", "tokens") and kind not in es.kinds:
            raise PMRFusionError(f"encoder '{name}' takes text; modality '{m}' is {kind}")
        names[m] = name
    return names


def with_encoder_inputs(
    data: RawMultimodalData, spec: dict[str, str] | None = None, max_length: int = 128
) -> RawMultimodalData:
    """`data` with every text modality whose encoder takes tokens decoding to (2, max_length) tokens
    (that encoder's tokenizer); unchanged when there is none. A missing optional dependency of a
    chosen encoder raises here, before anything is decoded."""
    tokenizers = {}
    for m, name in encoder_names(data, spec).items():
        es = encoder_spec(name)
        es.check_available()
        if data.kinds[m] == "text" and "tokens" in es.kinds and "text" not in es.kinds:
            tokenizers[m] = es.tokenizer(max_length)
    return data.with_tokens(tokenizers) if tokenizers else data


def default_encoders(
    data: RawMultimodalData,
    train: RawSplit,
    spec: dict[str, str] | None = None,
    out_dims: dict[str, int] | None = None,
    widths: dict[str, int] | None = None,
    frontend: FrontendConfig | None = None,
    stats: dict[str, ModalityStats] | None = None,
) -> dict[str, ModalityEncoder]:
    """Front-end + encoder per modality (`encoder_names`), front-end statistics from `train`."""
    names = encoder_names(data, spec)
    stats = stats or fit_stats(train, frontend)
    out = {}
    for m in data.modalities:
        kind, name = data.kinds[m], names[m]
        if kind == "text" and "text" not in encoder_spec(name).kinds:
            raise PMRFusionError(
                f"modality '{m}' is raw text and encoder '{name}' takes tokens: tokenise it first "
                "(with_encoder_inputs does it; the runner calls it)"
            )
        fe = build_frontend(kind, data.shapes[m], stats[m], frontend)
        dim = (out_dims or {}).get(m, DEFAULT_OUT_DIM[kind])
        width = (widths or {}).get(m, DEFAULT_WIDTH.get(name, 32))
        out[m] = ModalityEncoder(fe, build_encoder(name, fe.out_shape, dim, width))
    return out


__all__ = [
    "REGIMES",
    "EncoderConfig",
    "ModalityEncoder",
    "split_pretrained",
    "default_encoders",
    "encoder_names",
    "parse_encoder_spec",
    "with_encoder_inputs",
]
