"""Every preset's loss, as written in the wild, against the algebra's claims."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vaeloss import (
    InvalidArgumentError,
    UnknownConventionError,
    get_convention,
    get_preset,
    negative_elbo,
)
from vaeloss.objective.presets import PRESETS
from vaeloss.testing import VaeInputs, assert_is_elbo, vae_inputs

NAMES = list(PRESETS)

# hand-derived (see ../shared/examples/README.md): effective beta as a function of (B, D, k)
EXPECTED_BETA = {
    "pytorch_examples": lambda B, D, k: 1,
    "per_sample_mean": lambda B, D, k: 1,
    "size_average": lambda B, D, k: B * D,
    "keras_blog": lambda B, D, k: D / k,
    "keras_docs": lambda B, D, k: 1,
    "kl_weight_c": lambda B, D, k: 0.5,
    "pytorch_vae": lambda B, D, k: 0.00025 * D / 2,
    "sse_sum": lambda B, D, k: 0.5,
    "mse_mean_sum_kld": lambda B, D, k: B * D / 2,
}
EXPECTED_GRAD = {
    "pytorch_examples": lambda B, D, k: B,
    "per_sample_mean": lambda B, D, k: 1,
    "size_average": lambda B, D, k: 1 / D,
    "keras_blog": lambda B, D, k: 1 / D,
    "keras_docs": lambda B, D, k: 1,
    "kl_weight_c": lambda B, D, k: 1,
    "pytorch_vae": lambda B, D, k: 2 / D,
    "sse_sum": lambda B, D, k: 2 * B,
    "mse_mean_sum_kld": lambda B, D, k: 2 / D,
}


def _inputs_for(name):
    lik = get_convention(name).likelihood
    return vae_inputs(likelihood=lik, batch_sizes=st.integers(1, 12), data_dims=st.integers(1, 40))


@pytest.mark.parametrize("name", NAMES)
def test_expected_beta_and_gradient_scale(name):
    conv = get_convention(name)
    for B, D, k in ((128, 784, 20), (7, 12, 3)):
        assert conv.effective_beta(B=B, D=D, k=k) == pytest.approx(EXPECTED_BETA[name](B, D, k), rel=1e-12)
        assert conv.gradient_scale(B=B, D=D, k=k) == pytest.approx(EXPECTED_GRAD[name](B, D, k), rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_preset_is_gradient_scale_times_elbo_with_its_beta(name, data):
    """loss = gradient_scale * per-sample ELBO_beta + const: value differences and gradients."""
    inputs = data.draw(_inputs_for(name))
    conv = get_convention(name)
    B, D, k = inputs.x.shape[0], inputs.x.shape[1], inputs.mu.shape[1]
    beta = conv.effective_beta(B=B, D=D, k=k)
    assert_is_elbo(get_preset(name).loss, inputs, convention=conv, beta=beta)
    other = data.draw(
        vae_inputs(
            likelihood=conv.likelihood,
            batch_sizes=st.just(B),
            data_dims=st.just(D),
            latent_dims=st.just(k),
        )
    )
    scale = conv.gradient_scale(B=B, D=D, k=k)

    def elbo(i: VaeInputs) -> float:
        return (
            scale
            * negative_elbo(
                i.recon,
                i.x,
                i.mu,
                i.logvar,
                likelihood=conv.likelihood,
                decoder_output=i.decoder_output,
                beta=beta,
            ).loss.item()
        )

    def own(i: VaeInputs) -> float:
        out = get_preset(name).loss(i.recon, i.x, i.mu, i.logvar)
        return out.mean().item()

    assert own(inputs) - own(other) == pytest.approx(elbo(inputs) - elbo(other), rel=1e-6, abs=1e-9)


@given(vae_inputs())
def test_pytorch_examples_is_B_times_per_sample(inputs):
    B = inputs.x.shape[0]
    actual = get_preset("pytorch_examples").loss(*inputs[:4])
    expected = B * get_preset("per_sample_mean").loss(*inputs[:4])
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


@given(vae_inputs(likelihood="gaussian"))
def test_sse_sum_plus_kl_is_twice_gaussian_sigma1_beta_half(inputs):
    B = inputs.x.shape[0]
    d = 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64)) * inputs.x.numel()
    actual = get_preset("sse_sum").loss(*inputs[:4])
    g = negative_elbo(
        *inputs[:4], likelihood="gaussian", decoder_output="mean", beta=0.5, batch_reduction="sum"
    )
    torch.testing.assert_close(actual, 2 * (g.loss - d), rtol=1e-9, atol=1e-9)
    assert B >= 1


@given(vae_inputs(likelihood="gaussian"), st.floats(0.05, 3), st.floats(0.01, 5))
def test_gaussian_sigma_beta_is_unit_gaussian_with_beta_sigma2(inputs, sigma, beta):
    """NLL_sigma + beta KL = (1/sigma^2) (NLL_1 + beta sigma^2 KL) + const."""

    def loss(s, b, i):
        return negative_elbo(*i[:4], likelihood="gaussian", decoder_output="mean", sigma=s, beta=b).loss

    left = loss(sigma, beta, inputs)
    right = loss(1.0, beta * sigma**2, inputs) / sigma**2
    const = left - right
    shifted = inputs._replace(recon=inputs.recon * 0.5, mu=inputs.mu + 1)
    torch.testing.assert_close(
        loss(sigma, beta, shifted) - loss(1.0, beta * sigma**2, shifted) / sigma**2,
        const,
        rtol=1e-8,
        atol=1e-8,
    )


@pytest.mark.parametrize("name", NAMES)
@given(st.floats(1e-3, 1e3), st.integers(1, 512), st.integers(1, 4096), st.integers(1, 64))
def test_kl_weight_for_reaches_the_target(name, target, B, D, k):
    conv = get_convention(name)
    w = conv.kl_weight_for(target, B=B, D=D, k=k)
    assert conv.with_kl_weight(w).effective_beta(B=B, D=D, k=k) == pytest.approx(target, rel=1e-9)


def test_unknown_convention_and_bad_sizes():
    with pytest.raises(
        UnknownConventionError, match=r"but got convention='keras'. Try one of: pytorch_examples"
    ):
        get_convention("keras")
    with pytest.raises(InvalidArgumentError, match=r"integer >= 1 but got B=0"):
        get_convention("size_average").effective_beta(B=0, D=784, k=20)
    with pytest.raises(InvalidArgumentError, match=r"number >= 0 but got target_beta=-1"):
        get_convention("size_average").kl_weight_for(-1, B=1, D=1, k=1)
