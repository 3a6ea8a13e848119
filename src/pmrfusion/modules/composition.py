"""Encoders + a registered fusion method = one `FusionModel` over raw inputs.

`build_model(encoders, method, num_classes, **method_cfg)` builds the method on the encoders'
output widths; its forward is `forward(raw_inputs, present) -> ModelOutput`: each encoder maps
its raw input to V_m, absent modalities get V_m = 0 (the papers' protocol) and the method
fuses the V_m with `present` as usual. Encoder parameters form their own optimizer group
("encoders", AdamW); the pretrained weights of an encoder that has them (`pretrained_parameters()`,
e.g. MiniLM's BERT) form the group "pretrained" when a `pretrained_optimizer` is given (a fine-tuning
learning rate); a method's own groups (e.g. PMR's "pmr") stay as they are.

Which encoder a modality gets (`encoder_names`): the one asked for (`--encoders m=name`), else the
dataset's default for it (`RawMultimodalData.encoder_defaults`), else its kind's default. A text
modality whose encoder takes tokens (`minilm`) is tokenised at decode time (`with_encoder_inputs`).
"""

from __future__ import annotations

from torch import Tensor, nn

from pmrfusion.data.raw import RawMultimodalData, RawSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import Batch, FusionModel, build_method, zero_absent
from pmrfusion.modules.encoders import (
    DEFAULT_ENCODER,
    DEFAULT_OUT_DIM,
    DEFAULT_WIDTH,
    available_encoders,
    build_encoder,
    encoder_spec,
)
from pmrfusion.modules.frontends import FrontendConfig, ModalityStats, build_frontend, fit_stats
from pmrfusion.optim import OptimizerSpec
from pmrfusion.types import ModelOutput


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


class EncodedFusion(FusionModel):
    """A fusion method on top of per-modality encoders (see module docstring)."""

    def __init__(
        self,
        encoders: dict[str, nn.Module],
        method: FusionModel,
        encoder_optimizer: OptimizerSpec,
        pretrained_optimizer: OptimizerSpec | None = None,
    ):
        super().__init__(method.modalities)
        self.encoders = nn.ModuleDict(encoders)
        self.method = method
        self.loss_weights = method.loss_weights
        self.default_group_optimizers = {**method.default_group_optimizers, "encoders": encoder_optimizer}
        pre, rest = split_pretrained(self.encoders.values())
        self.split_pretrained = bool(pre) and pretrained_optimizer is not None
        if self.split_pretrained:
            self.default_group_optimizers["pretrained"] = pretrained_optimizer
            if not rest:
                self.default_group_optimizers.pop("encoders")
        self.frozen = False
        self._encoded: dict[str, Tensor] = {}

    def encode(self, raw: dict[str, Tensor], present: Tensor | None) -> dict[str, Tensor]:
        views = self.views(raw)
        v = {m: self.encoders[m](x) for m, x in zip(self.modalities, views)}
        return zero_absent(v, present, self.modalities)

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        encoded = self.encode(features, present)
        self._encoded = encoded
        return self.method(encoded, present)

    def auxiliary_losses(self, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        enc = Batch(self._encoded, batch.present, batch.labels, batch.index)
        return self.method.auxiliary_losses(output, enc)

    def task_loss(self, output: ModelOutput, batch: Batch) -> Tensor:
        return self.method.task_loss(output, batch)

    def on_epoch_start(self, epoch: int) -> None:
        self.method.on_epoch_start(epoch)

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = dict(self.method.optimizer_groups())
        if self.frozen:
            return groups
        if not self.split_pretrained:
            groups["encoders"] = list(self.encoders.parameters())
            return groups
        pre, rest = split_pretrained(self.encoders.values())
        groups["pretrained"] = pre
        if rest:
            groups["encoders"] = rest
        return groups

    def freeze_encoders(self) -> None:
        """Fix the encoders (the `frozen` regime): no gradients, eval mode, no optimizer group."""
        self.frozen = True
        self.default_group_optimizers.pop("encoders", None)
        self.default_group_optimizers.pop("pretrained", None)
        for p in self.encoders.parameters():
            p.requires_grad_(False)
        self.encoders.eval()

    def train(self, mode: bool = True) -> EncodedFusion:
        super().train(mode)
        if self.frozen:
            self.encoders.eval()
        return self


class UnimodalClassifier(FusionModel):
    """One encoder and a linear head: unimodal pre-training and unimodal baselines."""

    def __init__(
        self,
        modality: str,
        encoder: nn.Module,
        num_classes: int,
        pretrained_optimizer: OptimizerSpec | None = None,
    ):
        super().__init__([modality])
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, num_classes)
        if pretrained_optimizer is not None and split_pretrained([encoder])[0]:
            self.default_group_optimizers["pretrained"] = pretrained_optimizer

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        pre = split_pretrained([self.encoder])[0]
        return {"pretrained": pre} if pre else {}

    def forward(self, features: dict[str, Tensor], present: Tensor | None = None) -> ModelOutput:
        return ModelOutput(self.head(self.encoder(features[self.modalities[0]])))


def build_model(
    encoders: dict[str, nn.Module],
    method: str,
    num_classes: int,
    encoder_optimizer: OptimizerSpec | None = None,
    pretrained_optimizer: OptimizerSpec | None = None,
    **method_cfg,
) -> EncodedFusion:
    """Compose `encoders` (modality -> module with `out_dim`) with registered `method`;
    `pretrained_optimizer` trains the encoders' pretrained weights (default: with the others)."""
    bad = [m for m, e in encoders.items() if not hasattr(e, "out_dim")]
    if bad:
        raise PMRFusionError(f"encoders {bad} have no 'out_dim' attribute")
    dims = {m: int(e.out_dim) for m, e in encoders.items()}
    fusion = build_method(method, dims, num_classes, **method_cfg)
    enc_opt = encoder_optimizer or OptimizerSpec("adamw", 1e-3, 0.9, 1e-4)
    return EncodedFusion(encoders, fusion, enc_opt, pretrained_optimizer)


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
                "(prepare_raw does; or composition.with_encoder_inputs)"
            )
        fe = build_frontend(kind, data.shapes[m], stats[m], frontend)
        dim = (out_dims or {}).get(m, DEFAULT_OUT_DIM[kind])
        width = (widths or {}).get(m, DEFAULT_WIDTH.get(name, 32))
        out[m] = ModalityEncoder(fe, build_encoder(name, fe.out_shape, dim, width))
    return out


__all__ = [
    "EncodedFusion",
    "ModalityEncoder",
    "UnimodalClassifier",
    "build_model",
    "default_encoders",
    "encoder_names",
    "parse_encoder_spec",
    "with_encoder_inputs",
]
