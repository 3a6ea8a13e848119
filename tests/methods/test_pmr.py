import math

import pytest
import torch

from pmrfusion.errors import PMRFusionError
from pmrfusion.methods import build_method
from pmrfusion.modules.reconfiguration import Reconfiguration
from pmrfusion.objectives.preservation import relaxed_preservation, strict_preservation


def test_shapes_unequal_dims():
    block = Reconfiguration([1024, 300], n=4, b=0.5)
    out = block([torch.randn(5, 1024), torch.randn(5, 300)])
    assert [z.shape for z in out.fused] == [(5, 1324), (5, 600)]
    assert [r.shape for r in out.reconstructed] == [(5, 1024), (5, 300)]
    assert block.bounds == [2048, 600] and block.out_dims == [1324, 600]


def table9_weights(dims, n, b):
    """Weight terms of the paper's Table 9 (per modality, summed)."""
    l_star = min(dims)
    total = 0
    for m, d in enumerate(dims):
        k = (m + 1) % len(dims)
        b_k = math.floor(b * n * dims[k])
        b_m = math.floor(b * n * d)
        total += n * d * d + b_k * l_star + (n * d - b_m) * d + d * (d + l_star)
    return total


@pytest.mark.parametrize(
    "dims, n, b", [([1024, 300], 4, 0.5), ([484, 256, 279], 2, 0.25), ([10, 6, 8], 8, 0.75)]
)
def test_parameter_count_matches_table9(dims, n, b):
    block = Reconfiguration(dims, n=n, b=b)
    weights = sum(p.numel() for name, p in block.named_parameters() if name.endswith("weight"))
    assert weights == table9_weights(dims, n, b)
    # nn.Linear biases have the output width. Table 9 prints the P_shared / P_specific bias with
    # the input width (b, nl - b); P_dis (nl) and P_recon (l) agree with it.
    l_star = min(dims)
    biases = sum(p.numel() for name, p in block.named_parameters() if name.endswith("bias"))
    assert biases == sum(n * d + l_star + d + d for d in dims)


def test_shared_part_comes_from_next_modality():
    torch.manual_seed(0)
    block = Reconfiguration([6, 4, 5], n=2, b=0.5)
    views = [torch.randn(3, d) for d in (6, 4, 5)]
    base = block(views)
    shifted = [views[0], views[1] + 1.0, views[2]]
    out = block(shifted)
    # modality 1 feeds the shared part of modality 0 and its own specific part only
    assert not torch.allclose(out.shared[0], base.shared[0])
    assert torch.allclose(out.shared[1], base.shared[1]) and torch.allclose(out.shared[2], base.shared[2])
    assert not torch.allclose(out.specific[1], base.specific[1])
    assert torch.allclose(out.specific[0], base.specific[0])


def test_strict_and_relaxed_losses_by_hand():
    v = [torch.tensor([[1.0, 2.0], [0.0, 1.0]]), torch.tensor([[3.0, 0.0, 4.0], [1.0, 1.0, 1.0]])]
    r = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 0.0, 4.0], [1.0, 1.0, 1.0]])]
    # sum reduction: mean_i ||v - r||^2 per modality: (4 + 0)/2 + (9 + 0)/2 = 6.5
    assert strict_preservation(v, r, "sum").item() == pytest.approx(6.5)
    # mean reduction divides by the width: 2/2 + 4.5/3 = 2.5
    assert strict_preservation(v, r, "mean").item() == pytest.approx(2.5)
    # cos([1,2],[1,0]) = 1/sqrt5; cos([3,0,4],[0,0,4]) = 4/5; the other rows are identical
    expected = (1 - 1 / math.sqrt(5)) / 2 + (1 - 0.8) / 2
    assert relaxed_preservation(v, r).item() == pytest.approx(expected, rel=1e-6)


def test_perfect_reconstruction_gives_zero_loss():
    v = [torch.randn(4, 3), torch.randn(4, 5)]
    assert strict_preservation(v, v).item() == 0.0
    assert relaxed_preservation(v, v).item() == pytest.approx(0.0, abs=1e-6)


def test_config_errors():
    with pytest.raises(PMRFusionError, match="unknown method"):
        build_method("nope", {"a": 2, "b": 2}, 2)
    with pytest.raises(PMRFusionError, match="no option"):
        build_method("sg-concat", {"a": 2, "b": 2}, 2, lamda=1.0)
    with pytest.raises(PMRFusionError, match="empty part"):
        build_method("sg-concat", {"a": 1, "b": 2}, 2, n=1, b=0.25)
    with pytest.raises(PMRFusionError, match="dimensions must be"):
        build_method("concat", {"a": 0, "b": 2}, 2)
