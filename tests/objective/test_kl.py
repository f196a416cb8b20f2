import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Normal, kl_divergence

from vaeloss import InvalidArgumentError, ShapeMismatchError
from vaeloss.objective.kl import kl_monte_carlo, kl_normal, to_logvar

F64 = torch.float64


def _latents(seed, shape=(5, 4)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=F64) * 2, torch.randn(shape, generator=g, dtype=F64) * 3


@given(st.integers(0, 10_000), st.sampled_from(["logvar", "log_std", "std", "var"]))
def test_kl_matches_torch_kl_divergence(seed, param):
    mu, logvar = _latents(seed)
    std = torch.exp(0.5 * logvar)
    scale = {"logvar": logvar, "log_std": 0.5 * logvar, "std": std, "var": std**2}[param]
    actual = kl_normal(mu, scale, parameterisation=param)
    expected = kl_divergence(Normal(mu, std), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-12)


def test_kl_is_zero_at_the_prior_and_exact_near_it():
    mu = torch.zeros(2, 3, dtype=F64)
    assert kl_normal(mu, torch.zeros(2, 3, dtype=F64)).abs().max() == 0
    tiny = torch.full((1, 1), 1e-8, dtype=F64)
    # 0.5 * (e^x - 1 - x) = x^2 / 4 + O(x^3)
    assert kl_normal(torch.zeros(1, 1, dtype=F64), tiny).item() == pytest.approx(1e-16 / 4, rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_kl_finite_at_logvar_plus_minus_30(dtype):
    logvar = torch.tensor([[30.0, -30.0]], dtype=dtype)
    kl = kl_normal(torch.zeros(1, 2, dtype=dtype), logvar)
    assert torch.isfinite(kl).all()
    assert kl[0, 1].item() == pytest.approx(0.5 * (29.0 + torch.exp(torch.tensor(-30.0)).item()), rel=1e-5)


def test_monte_carlo_kl_is_unbiased():
    mu, logvar = _latents(3, (2, 3))
    g = torch.Generator().manual_seed(0)
    n = 200_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, *mu.shape, generator=g, dtype=F64)
    samples = kl_monte_carlo(z, mu, logvar)
    expected = kl_normal(mu, logvar)
    stderr = samples.std(0) / n**0.5
    assert ((samples.mean(0) - expected).abs() < 5 * stderr + 1e-12).all()


def test_to_logvar_round_trips():
    lv = torch.tensor([[0.3, -2.0]], dtype=F64)
    for param, scale in (("std", torch.exp(lv / 2)), ("var", torch.exp(lv)), ("log_std", lv / 2)):
        torch.testing.assert_close(to_logvar(scale, parameterisation=param), lv)


def test_kl_errors():
    with pytest.raises(
        InvalidArgumentError,
        match=r"'logvar', 'log_std', 'std', 'var' but got parameterisation='sigma'",
    ):
        kl_normal(torch.zeros(1, 2), torch.zeros(1, 2), parameterisation="sigma")
    with pytest.raises(ShapeMismatchError, match=r"mu.shape=\(1, 2\), scale.shape=\(1, 3\)"):
        kl_normal(torch.zeros(1, 2), torch.zeros(1, 3))
