"""Encoders + a registered fusion method = one `FusionModel` over raw inputs (TorchMultimodal's
`LateFusion(encoders, fusion, head)` shape: per-modality encoders, then the method as fusion + head).

`build_model(encoders, method, num_classes, **method_cfg)` builds the method on the encoders'
output widths; its forward is `forward(raw_inputs, present) -> ModelOutput`: each encoder maps
its raw input to V_m, absent modalities get V_m = 0 (the papers' protocol) and the method
fuses the V_m with `present` as usual. Encoder parameters form their own optimizer group
("encoders", AdamW); the pretrained weights of an encoder that has them (`pretrained_parameters()`,
e.g. MiniLM's BERT) form the group "pretrained" when a `pretrained_optimizer` is given (a fine-tuning
learning rate); a method's own groups (e.g. PMR's "pmr") stay as they are.
"""

from __future__ import annotations

from torch import Tensor, nn

from pmrfusion.errors import PMRFusionError
from pmrfusion.methods.base import Batch, FusionModel, build_method, zero_absent
from pmrfusion.modules.composition import split_pretrained
from pmrfusion.optim import OptimizerSpec
from pmrfusion.types import ModelOutput


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

    @property
    def last_encoded(self) -> dict[str, Tensor]:
        """The encoder outputs V_m of the last forward pass (absent modalities zeroed)."""
        return self._encoded

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


__all__ = ["EncodedFusion", "UnimodalClassifier", "build_model"]
