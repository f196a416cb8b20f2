import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Normal

from vaeloss.metrics import (
    CollapseMonitor,
    active_units,
    collapsed_dims,
    iwae_nll,
    kl_per_dim,
    latent_usage,
    mutual_information,
    output_diversity,
)

F64 = torch.float64


def test_active_units_by_hand():
    mu = torch.tensor([[0.0, 1.0, 0.05], [0.0, -1.0, -0.05], [0.0, 1.0, 0.05], [0.0, -1.0, -0.05]])
    au = active_units(mu)
    assert au.number == 1
    torch.testing.assert_close(au.variances, torch.tensor([0.0, 1.0, 0.0025]))


@given(st.integers(0, 1000))
def test_kl_per_dim_matches_distributions(seed):
    g = torch.Generator().manual_seed(seed)
    mu, lv = torch.randn(20, 3, generator=g, dtype=F64), torch.randn(20, 3, generator=g, dtype=F64)
    expected = torch.distributions.kl_divergence(Normal(mu, (0.5 * lv).exp()), Normal(0.0, 1.0)).mean(0)
    torch.testing.assert_close(kl_per_dim(mu, lv), expected)


def test_collapsed_dims():
    mu = torch.zeros(100, 2)
    mu[:50, 1] = 2.0
    assert collapsed_dims(mu, torch.zeros(100, 2)).tolist() == [True, False]


def test_mutual_information_gaussian_closed_form():
    """q(z|x) = N(a x, s^2) with x ~ N(0, 1): I = 0.5 log(1 + a^2 / s^2)."""
    g = torch.Generator().manual_seed(0)
    a, s2 = 2.0, 0.25
    x = torch.randn(4000, 1, generator=g, dtype=F64)
    mu, lv = a * x, torch.full_like(x, math.log(s2))
    expected = 0.5 * math.log(1 + a**2 / s2)
    assert mutual_information(mu, lv, generator=g) == pytest.approx(expected, abs=0.05)


def test_mutual_information_cannot_exceed_log_n():
    mu = torch.arange(16, dtype=F64).reshape(16, 1) * 100  # perfectly separated posteriors
    lv = torch.full_like(mu, -10.0)
    mi = mutual_information(mu, lv, generator=torch.Generator().manual_seed(0))
    assert mi == pytest.approx(math.log(16), abs=1e-6)


def test_mutual_information_is_never_below_zero():
    """Nearly identical posteriors (collapse): the one-sample estimate falls below zero by its
    noise with seed 0 (-0.0027 before the clip; a callback logged collapse/mi = -0.0004)."""
    mu = 0.02 * torch.randn(300, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    lv = torch.zeros_like(mu)
    estimates = [mutual_information(mu, lv, generator=torch.Generator().manual_seed(s)) for s in range(5)]
    assert min(estimates) == 0.0 and max(estimates) > 0.0


def test_iwae_exact_for_the_true_posterior():
    """With q = p(z|x) every importance weight equals p(x): the bound is exact for any K."""
    g = torch.Generator().manual_seed(1)
    # model: z ~ N(0,1), x|z ~ N(z, 1)  =>  p(x) = N(0, 2), p(z|x) = N(x/2, 1/2)
    x = torch.randn(50, 1, generator=g, dtype=F64)
    mu, lv = x / 2, torch.full_like(x, math.log(0.5))

    def log_lik(z, xx):
        return Normal(z, 1.0).log_prob(xx).sum(-1)

    nll = iwae_nll(x, mu, lv, log_lik, samples=7, chunk=3, generator=g)
    expected = -Normal(0.0, math.sqrt(2)).log_prob(x).sum(-1)
    torch.testing.assert_close(nll, expected)


def test_iwae_tightens_with_k():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 1, generator=g, dtype=F64)
    mu, lv = torch.zeros_like(x), torch.zeros_like(x)  # the prior as proposal: a loose bound

    def log_lik(z, xx):
        return Normal(z, 1.0).log_prob(xx).sum(-1)

    exact = -Normal(0.0, math.sqrt(2)).log_prob(x).sum(-1).mean()
    b1 = iwae_nll(x, mu, lv, log_lik, samples=1, generator=g).mean()
    b1000 = iwae_nll(x, mu, lv, log_lik, samples=1000, generator=g).mean()
    assert b1 > b1000 > exact - 0.01
    assert b1000 - exact < 0.02


def test_output_diversity_and_latent_usage():
    x = torch.rand(30, 5)
    assert output_diversity(x.clone(), x) == pytest.approx(1.0)
    assert output_diversity(x.mean(0, keepdim=True).expand_as(x).clone(), x) == 0.0
    pair = torch.cdist(x, x)
    expected = (0.5 * pair).sum() / (30 * 29) / (pair.sum() / (30 * 29))
    assert output_diversity(0.5 * x, x) == pytest.approx(float(expected))
    mu = torch.randn(30, 2)
    assert latent_usage(lambda z: torch.zeros(z.shape[0], 5), mu, x) == 0.0
    assert latent_usage(lambda z: z.repeat(1, 3)[:, :5], mu, x) > 0.5


def test_monitor_matches_metrics():
    g = torch.Generator().manual_seed(0)
    mon = CollapseMonitor()
    mus, lvs = [], []
    for _ in range(5):
        mu, lv = torch.randn(32, 3, generator=g), torch.randn(32, 3, generator=g) * 0.1
        mu[:, 2] = 0.0
        mon.update(mu, lv)
        mus.append(mu)
        lvs.append(lv)
    s = mon.summary(reset=True)
    mu, lv = torch.cat(mus), torch.cat(lvs)
    assert s is not None and s.active_units == 2
    np.testing.assert_allclose(s.kl_per_dim, kl_per_dim(mu, lv).tolist(), rtol=1e-6)
    assert mon.summary() is None
    # print(monitor.summary()) reads as a summary, not a dataclass dump of every list
    text = str(s)
    assert text.startswith("collapse summary of 160 rows: 2 of 3 latent dims active (not collapsed)\n")
    assert f"z2 {s.kl_per_dim[2]:.4g}" in text and "kl_per_dim=" not in text and "au_variances" not in text
