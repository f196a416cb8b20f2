import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli

from vaeloss.objective.fused import bernoulli_logits_nll

F64 = torch.float64
SHAPES = [
    pytest.param((5, 9), (5, 9), id="same-5x9"),
    pytest.param((3, 5, 9), (5, 9), id="sweep-3x5x9-data-5x9"),
    pytest.param((2, 4, 1, 3, 3), (4, 1, 3, 3), id="images-2x4x1x3x3"),
    pytest.param((5, 1), (5, 9), id="logits-5x1-broadcast-to-data-5x9"),
]


def _inputs(shape, target_shape, dtype=F64, seed=0, scale=12.0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(shape, generator=g, dtype=F64) * scale).to(dtype)
    target = torch.rand(target_shape, generator=g, dtype=F64).to(dtype)
    return logits, target


def _exact(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """max(o, 0) - x o + log1p(exp(-|o|)) element by element with Python's math, float64."""
    values = [
        max(o, 0.0) - x * o + math.log1p(math.exp(-abs(o)))
        for o, x in zip(logits.double().flatten().tolist(), target.double().flatten().tolist())
    ]
    return torch.tensor(values, dtype=F64).reshape(logits.shape)


def test_binary_targets_match_torch_distributions_float64():
    logits = torch.linspace(-80, 80, 4001, dtype=F64)
    for value in (0.0, 1.0):
        target = torch.full_like(logits, value)
        actual = bernoulli_logits_nll(logits, target)
        expected = -Bernoulli(logits=logits).log_prob(target)
        # torch computes (1 - x) o - logsigmoid(o), which cancels to ~1e-15 absolute
        torch.testing.assert_close(actual, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype, rtol", [(F64, 4e-16), (torch.float32, 3e-7)], ids=["float64", "float32"])
def test_binary_targets_to_a_few_ulps_of_math_log1p(dtype, rtol):
    # down to values of 1e-35 (logit -80, target 0), where torch.distributions returns 0
    logits = torch.linspace(-80, 80, 4001, dtype=F64).to(dtype)
    for value in (0.0, 1.0):
        target = torch.full_like(logits, value)
        actual = bernoulli_logits_nll(logits, target).double()
        expected = _exact(logits, target)
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("shape, target_shape", SHAPES)
def test_values_and_gradients_match_torch_bce_float64(shape, target_shape):
    logits, target = _inputs(shape, target_shape)
    logits.requires_grad_(True)
    target.requires_grad_(True)
    weights = torch.rand(torch.broadcast_shapes(shape, target_shape), dtype=F64)
    actual = bernoulli_logits_nll(logits, target)
    actual_grads = torch.autograd.grad((actual * weights).sum(), (logits, target))
    full = torch.broadcast_shapes(shape, target_shape)
    expected = F.binary_cross_entropy_with_logits(logits.expand(full), target.expand(full), reduction="none")
    expected_grads = torch.autograd.grad((expected * weights).sum(), (logits, target))
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    for a, e in zip(actual_grads, expected_grads):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    logits, target = _inputs((3, 4), (3, 4), scale=3.0)
    assert torch.autograd.gradcheck(
        bernoulli_logits_nll, (logits.requires_grad_(), target.requires_grad_()), eps=1e-6
    )


@settings(max_examples=60, deadline=None)
@given(
    logit=st.floats(-1e4, 1e4, allow_nan=False, width=32),
    target=st.floats(0, 1, width=32),
)
def test_float32_within_a_few_ulps_of_the_float64_value(logit, target):
    o32, x32 = torch.tensor([logit]), torch.tensor([target])
    actual = bernoulli_logits_nll(o32, x32).double()
    o, x = o32.double(), x32.double()
    expected = F.softplus(o) - x * o
    # the float32 rounding of the exact value, plus the unavoidable cancellation of x*o
    tol = 4e-7 * expected.abs() + 2e-7 * (o.abs() * x + o.clamp_min(0) + 1e-30) + 1e-37
    assert torch.isfinite(actual).all()
    assert (actual - expected).abs().item() <= tol.item()


def test_float32_close_to_torch_for_fractional_targets():
    logits = torch.tensor([-200.0, -30.0, -17.0, -1e-8, 0.0, 1e-8, 17.0, 30.0, 200.0])
    target = torch.full_like(logits, 0.3)
    actual = bernoulli_logits_nll(logits, target)
    expected = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=0)


def test_finite_and_exact_gradient_at_extreme_logits():
    logits = torch.tensor([-1e30, -1e4, 1e4, 1e30], requires_grad=True)
    target = torch.tensor([0.0, 1.0, 0.0, 1.0])
    value = bernoulli_logits_nll(logits, target)
    (grad,) = torch.autograd.grad(value.sum(), logits)
    torch.testing.assert_close(value, torch.tensor([0.0, 1e4, 1e4, 0.0]), rtol=0, atol=0)
    torch.testing.assert_close(grad, torch.tensor([0.0, -1.0, 1.0, 0.0]), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
def test_half_precision_logits_are_computed_in_float32(dtype):
    logits, target = _inputs((64, 50), (64, 50), dtype=torch.float32, scale=4.0)
    low = logits.to(dtype).requires_grad_()
    actual = bernoulli_logits_nll(low, target)
    (grad,) = torch.autograd.grad(actual.sum(-1).mean(), low)
    exact_logits = low.detach().double()
    expected = F.binary_cross_entropy_with_logits(exact_logits, target.double(), reduction="none")
    assert actual.dtype == torch.float32 and grad.dtype == dtype
    # per-sample sums over 50 dims: float32 accuracy, not bf16's 3 significant digits
    torch.testing.assert_close(actual.sum(-1).double(), expected.sum(-1), rtol=1e-6, atol=1e-5)


def test_under_cpu_autocast_the_loss_stays_float32():
    logits, target = _inputs((8, 30), (8, 30), dtype=torch.float32)
    w = torch.eye(30)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = logits @ w  # bf16 under autocast
        actual = bernoulli_logits_nll(out, target)
    assert out.dtype == torch.bfloat16 and actual.dtype == torch.float32
