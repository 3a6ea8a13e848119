"""SRHT mapping: FWHT vs scipy's Hadamard matrix, norm preservation, exact inverse."""

import math

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard

from pmrfusion.errors import PMRFusionError
from pmrfusion.modules.mappings import make_mapping
from pmrfusion.modules.srht import SRHT, fwht, next_pow2
from pmrfusion.modules.srht import hadamard as cached_hadamard

torch.set_num_threads(1)


@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_fwht_matches_scipy_hadamard(n):
    x = torch.randn(3, n, dtype=torch.float64)
    H = torch.from_numpy(hadamard(n).astype(np.float64))
    torch.testing.assert_close(fwht(x, normalize=False), x @ H)
    torch.testing.assert_close(fwht(x), x @ H / math.sqrt(n))
    torch.testing.assert_close(fwht(fwht(x)), x)  # orthonormal and symmetric: its own inverse


def test_fwht_rejects_non_power_of_two():
    with pytest.raises(PMRFusionError):
        fwht(torch.randn(2, 6))


def test_next_pow2():
    assert [next_pow2(n) for n in (1, 2, 3, 5, 8, 9, 300)] == [1, 2, 4, 8, 8, 16, 512]


def test_exact_reconstruction_without_subsampling():
    m = SRHT(20, 32, seed=3, subsample=False)
    x = torch.randn(5, 20, dtype=torch.float32)
    y = m(x)
    assert y.shape == (5, 32)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=1e-5)  # orthogonal
    torch.testing.assert_close(m.inverse(y), x, rtol=1e-5, atol=1e-5)


def test_norm_preserved_in_expectation_over_seeds():
    x = torch.randn(1, 50)
    ratios = [float(SRHT(50, 16, seed=s)(x).pow(2).sum() / x.pow(2).sum()) for s in range(2000)]
    assert abs(np.mean(ratios) - 1.0) < 0.03
    # and the adjoint is an unbiased back-projection
    back = torch.stack([SRHT(50, 16, seed=s).inverse(SRHT(50, 16, seed=s)(x)) for s in range(2000)]).mean(0)
    assert float((back - x).norm() / x.norm()) < 0.1


def test_expansion_and_buffers_are_seeded_not_learned():
    a, b = SRHT(12, 48, seed=7), SRHT(12, 48, seed=7)
    assert list(a.parameters()) == []
    assert set(dict(a.named_buffers())) == {"signs", "rows"}
    x = torch.randn(4, 12)
    torch.testing.assert_close(a(x), b(x))
    assert a(x).shape == (4, 48)
    torch.manual_seed(0)
    c = make_mapping("srht", 12, 48)
    torch.manual_seed(0)
    d = make_mapping("srht", 12, 48)
    torch.testing.assert_close(c(x), d(x))


def test_fwht_trains_after_a_first_call_under_inference_mode():
    """The cached Hadamard factors must be ordinary tensors even when first built in inference mode."""
    cached_hadamard.cache_clear()
    with torch.inference_mode():
        fwht(torch.randn(2, 32))
    x = torch.randn(2, 32, requires_grad=True)
    fwht(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
