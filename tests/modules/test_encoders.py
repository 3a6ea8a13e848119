"""Encoders, front-ends and the composition with every registered fusion method."""

import numpy as np
import pytest
import torch

from pmrfusion.data.raw import ArraySource, RawMultimodalData, RawSplit
from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import available_methods
from pmrfusion.methods.encoded import EncodedFusion, build_model
from pmrfusion.modules.composition import default_encoders
from pmrfusion.modules.encoders import build_encoder, register_encoder
from pmrfusion.modules.frontends import LogSpectrogram, fit_stats
from pmrfusion.types import Batch


def _raw(m: int, n: int = 24) -> RawMultimodalData:
    rng = np.random.default_rng(0)
    arrays = {
        "image": rng.integers(0, 256, (n, 1, 12, 12), dtype=np.uint8),
        "audio": (rng.normal(0, 0.1, (n, 800)) * 32767).astype(np.int16),
        "vec": rng.normal(size=(n, 5)).astype(np.float32),
    }
    kinds = {"image": "image", "audio": "audio", "vec": "array"}
    shapes = {"image": (1, 12, 12), "audio": (800,), "vec": (5,)}
    mods = list(kinds)[:m]
    source = ArraySource({k: arrays[k] for k in mods}, {k: np.arange(n) for k in mods})
    labels = np.arange(n) % 3
    splits = {"train": np.arange(0, 18), "test": np.arange(18, n)}
    return RawMultimodalData("toy", {k: kinds[k] for k in mods}, {k: shapes[k] for k in mods},
                             labels, splits, source, 3)  # fmt: skip


def _batch(data: RawMultimodalData) -> tuple[RawSplit, Batch]:
    split = data.rows("train")
    split.loader_settings.num_workers = 0
    return split, next(split.batches(split.loader(6, shuffle_seed=0)))


def test_encoder_output_shapes_and_unequal_dims():
    x = torch.randn(4, 1, 28, 28)
    assert build_encoder("cnn", (1, 28, 28), 128, width=8)(x).shape == (4, 128)
    assert build_encoder("audio-cnn", (1, 32, 32), 64)(torch.randn(4, 1, 32, 32)).shape == (4, 64)
    assert build_encoder("mlp", (5,), 7, width=16)(torch.randn(4, 5)).shape == (4, 7)
    with pytest.raises(PMRFusionError, match="unknown encoder 'resnet'"):
        build_encoder("resnet", (1, 28, 28), 8)
    data = _raw(3)
    split, batch = _batch(data)
    encs = default_encoders(data, split, out_dims={"image": 128, "audio": 64, "vec": 16})
    out = {m: e(batch.features[m]) for m, e in encs.items()}
    shapes = {m: tuple(v.shape) for m, v in out.items()}
    assert shapes == {"image": (6, 128), "audio": (6, 64), "vec": (6, 16)}


def test_log_spectrogram_is_log_of_stft_magnitude_plus_1e8():
    wave = torch.randn(2, 1024)
    spec = LogSpectrogram(1024, n_fft=64, size=(33, 17))  # no pooling: 33 bins, 1024 // 17 = 60 hop
    ref = torch.stft(wave, 64, 60, window=torch.hann_window(64), return_complex=True).abs()
    assert ref.shape[1:] == (33, 18)
    pooled = torch.nn.functional.adaptive_avg_pool2d(ref.unsqueeze(1), (33, 17))
    assert torch.allclose(spec(wave), torch.log(pooled + 1e-8), atol=1e-5)
    assert float(spec(torch.zeros(1, 1024)).max()) == pytest.approx(np.log(1e-8), abs=1e-3)


def test_image_frontend_uses_training_statistics_only():
    data = _raw(2)
    stats = fit_stats(data.rows("train"))
    train_pixels = data.source.arrays["image"][:18].astype(np.float64)
    assert float(stats["image"].mean) == pytest.approx(train_pixels.mean(), rel=1e-5)
    assert float(stats["image"].std) == pytest.approx(train_pixels.std(ddof=1), rel=1e-4)


@pytest.mark.parametrize("m", [2, 3])
def test_every_method_runs_on_top_of_encoders(m):
    data = _raw(m)
    split, batch = _batch(data)
    encs = default_encoders(data, split, widths={"image": 4, "audio": 4, "vec": 8})
    for name in sorted(available_methods()):
        torch.manual_seed(0)
        model = build_model({k: v for k, v in encs.items()}, name, 3)
        assert isinstance(model, EncodedFusion)
        model.train()
        out = model(batch.features, batch.present)
        assert out.logits.shape == (6, 3), name
        loss = torch.nn.functional.cross_entropy(out.logits, batch.labels)
        for v in model.auxiliary_losses(out, batch).values():
            loss = loss + v
        model.zero_grad()
        loss.backward()
        # the task gradient reaches every encoder: the method fuses V_m, not raw inputs
        for mod, enc in model.encoders.items():
            grads = [p.grad for p in enc.parameters() if p.grad is not None]
            assert grads and any(float(g.abs().sum()) > 0 for g in grads), (name, mod)
        groups = model.optimizer_groups()
        assert "encoders" in groups and len(groups["encoders"]) == len(list(model.encoders.parameters()))


def test_absent_modality_is_a_zero_encoder_output():
    data = _raw(2)
    split, batch = _batch(data)
    model = build_model(default_encoders(data, split), "concat", 3)
    model.eval()
    present = torch.tensor([[True, False]] * 6)
    a = model(batch.features, present).logits
    noisy = {**batch.features, "audio": torch.randn_like(batch.features["audio"])}
    assert torch.equal(a, model(noisy, present).logits)  # the absent input cannot matter
    assert torch.equal(model._encoded["audio"], torch.zeros(6, 64))
    assert not torch.equal(a, model(batch.features, None).logits)


def test_registering_an_encoder():
    @register_encoder("tiny-test", ("array",), "test only")
    def _tiny(in_shape, out_dim, width):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(in_shape)), out_dim))

    data = _raw(3)
    split, batch = _batch(data)
    encs = default_encoders(data, split, spec={"vec": "tiny-test"}, out_dims={"vec": 3})
    assert encs["vec"](batch.features["vec"]).shape == (6, 3)
    with pytest.raises(PMRFusionError, match="unknown modalities"):
        default_encoders(data, split, spec={"text": "mlp"})
