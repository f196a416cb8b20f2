import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Normal, kl_divergence

from vaeloss import InvalidArgumentError, ShapeMismatchError, negative_elbo, reduce_terms
from vaeloss.testing import vae_inputs

F64 = torch.float64


def _independent(recon, x, mu, logvar, beta, likelihood):
    std = torch.exp(0.5 * logvar)
    kl = kl_divergence(Normal(mu, std), Normal(torch.zeros_like(mu), torch.ones_like(std))).sum(-1)
    if likelihood == "bernoulli":
        nll = -Bernoulli(probs=recon).log_prob(x).sum(-1)
    else:
        nll = -Normal(recon, 1.0).log_prob(x).sum(-1)
    return nll, kl, nll + beta * kl


@given(vae_inputs(binary=True), st.floats(0, 10))
def test_negative_elbo_equals_torch_distributions(inputs, beta):
    nll, kl, per_sample = _independent(inputs.recon, inputs.x, inputs.mu, inputs.logvar, beta, "bernoulli")
    terms = negative_elbo(inputs.recon, inputs.x, inputs.mu, inputs.logvar, beta=beta, batch_reduction="none")
    torch.testing.assert_close(terms.recon, nll, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(terms.kl, kl, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(terms.loss, per_sample, rtol=1e-6, atol=1e-9)


@given(vae_inputs(likelihood="gaussian"))
def test_gaussian_negative_elbo_equals_torch_distributions(inputs):
    _, _, per_sample = _independent(inputs.recon, inputs.x, inputs.mu, inputs.logvar, 1.0, "gaussian")
    terms = negative_elbo(
        inputs.recon,
        inputs.x,
        inputs.mu,
        inputs.logvar,
        likelihood="gaussian",
        decoder_output="mean",
    )
    torch.testing.assert_close(terms.loss, per_sample.mean(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("data_reduction", "latent_reduction", "batch_reduction", "expected"),
    [
        pytest.param("sum", "sum", "sum", 2 * (3 + 0.5 * 4), id="sum-sum-sum"),
        pytest.param("sum", "sum", "mean", 3 + 0.5 * 4, id="sum-sum-mean"),
        pytest.param("mean", "sum", "mean", 1 + 0.5 * 4, id="mean-sum-mean"),
        pytest.param("mean", "mean", "mean", 1 + 0.5 * 1, id="mean-mean-mean"),
    ],
)
def test_reductions_by_hand(data_reduction, latent_reduction, batch_reduction, expected):
    terms = reduce_terms(
        torch.ones(2, 3),
        torch.ones(2, 4),
        beta=0.5,
        data_reduction=data_reduction,
        latent_reduction=latent_reduction,
        batch_reduction=batch_reduction,
    )
    assert terms.loss.item() == pytest.approx(expected)


def test_image_shaped_inputs_reduce_over_all_data_dims():
    x = torch.ones(2, 1, 3, 3, dtype=F64)
    terms = negative_elbo(
        torch.full_like(x, 0.5), x, torch.zeros(2, 2, dtype=F64), torch.zeros(2, 2, dtype=F64)
    )
    assert terms.recon.shape == (2,)
    assert terms.loss.item() == pytest.approx(9 * torch.log(torch.tensor(2.0)).item())


def test_elbo_errors_pin_messages():
    p, x = torch.full((2, 3), 0.5), torch.ones(2, 3)
    mu, lv = torch.zeros(2, 4), torch.zeros(2, 4)
    with pytest.raises(InvalidArgumentError, match=r"number >= 0 but got beta=-1"):
        negative_elbo(p, x, mu, lv, beta=-1)
    with pytest.raises(InvalidArgumentError, match=r"finite number but got beta=nan"):
        negative_elbo(p, x, mu, lv, beta=float("nan"))
    with pytest.raises(InvalidArgumentError, match=r"'mean', 'sum', 'none' but got batch_reduction='avg'"):
        negative_elbo(p, x, mu, lv, batch_reduction="avg")
    with pytest.raises(InvalidArgumentError, match=r"but got data_reduction='max'"):
        negative_elbo(p, x, mu, lv, data_reduction="max")
    with pytest.raises(ShapeMismatchError, match=r"recon.shape\[0\]=2, mu.shape\[0\]=3"):
        negative_elbo(p, x, torch.zeros(3, 4), torch.zeros(3, 4))
    with pytest.raises(InvalidArgumentError, match=r"probabilities in \[0, 1\] but got probs"):
        negative_elbo(p * 3, x, mu, lv)
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"'bernoulli', 'gaussian', 'continuous_bernoulli', 'laplace', 'multinomial' "
            r"but got likelihood='poisson'"
        ),
    ):
        negative_elbo(p, x, mu, lv, likelihood="poisson")
    with pytest.raises(ValueError):  # every argument error is a ValueError too
        negative_elbo(p, x, mu, lv, beta=-2)
