import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Bernoulli, ContinuousBernoulli, Normal

from vaeloss import InvalidArgumentError, ShapeMismatchError
from vaeloss.objective.likelihoods import (
    bernoulli_nll,
    bernoulli_nll_logits,
    continuous_bernoulli_log_norm,
    continuous_bernoulli_nll,
    continuous_bernoulli_nll_logits,
    element_nll,
    gaussian_nll,
    gaussian_nll_from_sq,
    ml_variance,
    optimal_sigma,
)

SHAPES = [pytest.param((4, 7), id="flat-4x7"), pytest.param((3, 1, 5, 5), id="image-3x1x5x5")]
F64 = torch.float64


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = 0.01 + 0.98 * torch.rand(shape, generator=g, dtype=F64)
    x = torch.rand(shape, generator=g, dtype=F64)
    return p, x


@pytest.mark.parametrize("shape", SHAPES)
def test_bernoulli_matches_torch_distributions(shape):
    p, x = _data(shape)
    xb = (x > 0.5).to(F64)
    actual = bernoulli_nll(p, xb)
    expected = -Bernoulli(probs=p).log_prob(xb)
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_bernoulli_logits_matches_torch_distributions(shape):
    _, x = _data(shape)
    logits = torch.linspace(-30, 30, math.prod(shape), dtype=F64).reshape(shape)
    xb = (x > 0.5).to(F64)
    torch.testing.assert_close(
        bernoulli_nll_logits(logits, xb),
        -Bernoulli(logits=logits).log_prob(xb),
        rtol=1e-6,
        atol=1e-12,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_gaussian_fixed_scalar_and_per_dim_sigma(shape):
    m, x = _data(shape)
    torch.testing.assert_close(gaussian_nll(m, x, sigma=0.3), -Normal(m, 0.3).log_prob(x), rtol=1e-6, atol=0)
    sig = 0.1 + torch.rand(shape[1:], dtype=F64)
    torch.testing.assert_close(gaussian_nll(m, x, sigma=sig), -Normal(m, sig).log_prob(x), rtol=1e-6, atol=0)


def test_gaussian_learned_log_sigma_has_gradient():
    m, x = _data((5, 6))
    log_sigma = torch.tensor(-1.0, dtype=F64, requires_grad=True)
    actual = gaussian_nll(m, x, log_sigma=log_sigma)
    torch.testing.assert_close(actual, -Normal(m, log_sigma.exp()).log_prob(x), rtol=1e-6, atol=0)
    actual.sum().backward()
    assert log_sigma.grad is not None and log_sigma.grad.abs() > 0


@given(st.integers(0, 10_000))
def test_optimal_sigma_maximises_the_likelihood(seed):
    m, x = _data((6, 9), seed)
    s = optimal_sigma(m, x)
    at = gaussian_nll(m, x, sigma=s).sum()
    for factor in (0.99, 1.01):
        assert gaussian_nll(m, x, sigma=s * factor).sum() > at
    torch.testing.assert_close(s**2, ((x - m) ** 2).mean())


@pytest.mark.parametrize("shape", SHAPES)
def test_continuous_bernoulli_matches_torch_distributions(shape):
    p, x = _data(shape)
    # keep away from torch's Taylor window (0.499, 0.501), where it is an approximation
    p = torch.where((p - 0.5).abs() < 0.01, p + 0.02, p)
    torch.testing.assert_close(
        continuous_bernoulli_nll(p, x), -ContinuousBernoulli(probs=p).log_prob(x), rtol=1e-6, atol=0
    )
    logits = torch.log(p) - torch.log1p(-p)
    torch.testing.assert_close(
        continuous_bernoulli_nll_logits(logits, x),
        -ContinuousBernoulli(logits=logits).log_prob(x),
        rtol=1e-6,
        atol=0,
    )


def test_continuous_bernoulli_normaliser_is_smooth_through_half():
    eta = torch.tensor([-0.1 - 1e-9, -0.1 + 1e-9, 0.1 - 1e-9, 0.1 + 1e-9, 0.0], dtype=F64)
    actual = continuous_bernoulli_log_norm(eta)
    # closed form 2 artanh(1 - 2 lam) / (1 - 2 lam), evaluated where it is well conditioned
    lam = torch.sigmoid(eta[:4])
    expected = torch.log(2 * torch.atanh(1 - 2 * lam) / (1 - 2 * lam))
    torch.testing.assert_close(actual[:4], expected, rtol=1e-9, atol=0)
    assert actual[4].item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_bernoulli_is_finite_at_probabilities_zero_and_one(dtype):
    p = torch.tensor([[0.0, 1.0, 0.0, 1.0]], dtype=dtype)
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=dtype)
    nll = bernoulli_nll(p, x)
    assert torch.isfinite(nll).all()
    assert nll[0, :2].abs().max() == 0
    assert torch.isfinite(continuous_bernoulli_nll(p, torch.full_like(p, 0.3))).all()


def test_errors_name_argument_and_value():
    p, x = _data((2, 3))
    with pytest.raises(InvalidArgumentError, match=r"probabilities in \[0, 1\] but got probs .* probs=1\.5"):
        bernoulli_nll(p + 1.5 - p, x)
    with pytest.raises(ShapeMismatchError, match=r"probs.shape=\(2, 3\), target.shape=\(2, 4\)"):
        bernoulli_nll(p, torch.rand(2, 4, dtype=F64))
    with pytest.raises(InvalidArgumentError, match=r"number > 0 but got sigma=-1.0"):
        gaussian_nll(p, x, sigma=-1.0)
    with pytest.raises(InvalidArgumentError, match=r"floating-point tensor but got target="):
        bernoulli_nll(p, torch.ones(2, 3, dtype=torch.long))


@pytest.mark.parametrize("optimal_sigma", [False, True], ids=["sigma-0.3", "optimal-sigma"])
def test_gaussian_nll_from_sq_matches_torch_distributions(optimal_sigma):
    g = torch.Generator().manual_seed(3)
    x, mean = torch.rand(2, 6, 5, generator=g, dtype=F64), torch.rand(2, 6, 5, generator=g, dtype=F64)
    sq = (x - mean).square().sum(-1)
    if optimal_sigma:
        var = ml_variance(sq.sum(-1, keepdim=True), 6 * 5)
    else:
        var = torch.full((2, 1), 0.09, dtype=F64)
    actual = gaussian_nll_from_sq(sq, var.log(), count=5)
    expected_var = sq.mean(-1, keepdim=True) / 5 if optimal_sigma else torch.full((2, 1), 0.09, dtype=F64)
    expected = -Normal(mean, expected_var.sqrt().unsqueeze(-1)).log_prob(x).sum(-1)
    torch.testing.assert_close(var, expected_var, rtol=1e-12, atol=0)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("likelihood", "decoder_output"),
    [
        pytest.param("bernoulli", "probabilities", id="bernoulli-probabilities"),
        pytest.param("bernoulli", "logits", id="bernoulli-logits"),
        pytest.param("continuous_bernoulli", "probabilities", id="cb-probabilities"),
        pytest.param("continuous_bernoulli", "logits", id="cb-logits"),
        pytest.param("gaussian", "mean", id="gaussian"),
    ],
)
def test_unchecked_dispatch_equals_checked(likelihood, decoder_output):
    """The trainer's ``validate=False`` path computes what the checked functions compute."""
    p, x = _data((4, 7))
    recon = torch.log(p) - torch.log1p(-p) if decoder_output == "logits" else p
    expected = element_nll(recon, x, likelihood=likelihood, decoder_output=decoder_output, sigma=0.7)
    actual = element_nll(
        recon, x, likelihood=likelihood, decoder_output=decoder_output, sigma=0.7, validate=False
    )
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_unchecked_bernoulli_probabilities_equal_torch_and_pass_nan_through():
    """The trainer's kernel: F.binary_cross_entropy's values on valid input; a NaN output (a
    diverging model) gives NaN, which the trainer reports, not an exception."""
    from vaeloss.objective.likelihoods import element_nll

    probs = torch.tensor([[0.0, 0.2, 0.5, 1.0, 0.9]])
    target = torch.tensor([[0.0, 1.0, 0.3, 1.0, 0.0]])
    actual = element_nll(
        probs, target, likelihood="bernoulli", decoder_output="probabilities", validate=False
    )
    expected = torch.nn.functional.binary_cross_entropy(probs, target, reduction="none")
    torch.testing.assert_close(actual, expected)
    nan = element_nll(
        torch.tensor([[math.nan, 0.5]]),
        torch.tensor([[1.0, 1.0]]),
        likelihood="bernoulli",
        decoder_output="probabilities",
        validate=False,
    )
    assert math.isnan(nan[0, 0]) and nan[0, 1] == pytest.approx(math.log(2))
