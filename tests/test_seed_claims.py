"""The claims made in ../shared/SEEDS.md, settled. The README lists the verdicts."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vaeloss import get_convention, get_preset
from vaeloss.testing import assert_is_elbo, assert_same_objective, loss_gradients, vae_inputs

blog = get_preset("keras_blog").loss
docs = get_preset("keras_docs").loss


def test_claim_size_average_beta_is_B_times_784_and_moves_with_B():
    """Seed 1, worked out: effective beta = batch_size * 784 (about 100,000 at B=128). TRUE."""
    conv = get_convention("size_average")
    assert conv.effective_beta(B=128, D=784, k=20) == 128 * 784 == 100_352
    assert conv.effective_beta(B=64, D=784, k=20) == 64 * 784


def test_claim_kl_times_1e_4_fixes_it():
    """Seed 1: 'multiply the KL by 0.0001'. PARTLY: beta becomes B*D/1e4 ~ 10 at B=128, not 1,
    and it still moves with the batch size."""
    conv = get_convention("size_average").with_kl_weight(1e-4)
    assert conv.effective_beta(B=128, D=784, k=20) == pytest.approx(10.0352)
    assert conv.effective_beta(B=32, D=784, k=20) == pytest.approx(2.5088)


@given(vae_inputs(batch_sizes=st.integers(2, 8), data_dims=st.integers(3, 30), latent_dims=st.integers(2, 6)))
def test_claim_using_mean_consistently_is_false(inputs):
    """Seed 1: 'use .mean consistently'. FALSE for the ELBO: mean over pixels and latents gives
    beta = D/k, which is 1 only when D = k."""

    def all_mean(recon, x, mu, logvar):
        return torch.nn.functional.binary_cross_entropy(recon, x) + (
            -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
        )

    D, k = inputs.x.shape[1], inputs.mu.shape[1]
    assert_is_elbo(all_mean, inputs, convention=get_convention("keras_blog"), beta=D / k)
    if D != k:
        with pytest.raises(AssertionError):
            assert_is_elbo(all_mean, inputs, convention=get_convention("keras_blog"), beta=1.0)


def test_claim_blog_equals_docs_over_d_is_false_in_general():
    """Seed 2: 'first = second / d'. FALSE: hypothesis finds a counterexample."""
    failures = []

    @given(vae_inputs(latent_dims=st.integers(1, 12)))
    def claim(inputs):
        D = inputs.x.shape[1]
        actual = blog(*inputs[:4]).mean()
        claimed = docs(*inputs[:4]) / D
        torch.testing.assert_close(actual, claimed, rtol=1e-6, atol=1e-9)

    try:
        claim()
    except AssertionError as exc:
        failures.append(exc)
    assert failures, "hypothesis should refute 'keras blog loss = keras docs loss / d'"


@given(vae_inputs())
def test_corrected_claim_blog_is_docs_with_beta_d_over_k_over_d(inputs):
    """Corrected: blog = (1/d) * (docs loss with beta = d/k), exactly (no constant)."""
    D, k = inputs.x.shape[1], inputs.mu.shape[1]
    kl_docs = get_preset("kl_weight_c").loss
    from vaeloss.objective.presets import _kl_weight_c  # the docs loss with a KL coefficient

    assert kl_docs is _kl_weight_c
    actual = blog(*inputs[:4]).mean()
    expected = _kl_weight_c(*inputs[:4], c=D / k) / D
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12)


@given(vae_inputs())
def test_claim_docs_version_is_the_elbo(inputs):
    """Seed 2: the docs' version (original_dim * mean BCE + summed KL, batch mean) is the
    per-sample ELBO. TRUE (multiplying a per-pixel mean by D gives the per-sample sum)."""
    assert_is_elbo(docs, inputs, convention="per_sample_mean", beta=1.0)


@given(vae_inputs())
def test_claim_sum_non_batch_dims_mean_batch(inputs):
    """Seed 2: 'sum over every non-batch dim, average over the batch'. TRUE for beta = 1; the
    batch mean only sets the gradient scale (a sum over the batch is the same objective x B)."""
    per_sample = get_preset("per_sample_mean").loss
    summed = get_preset("pytorch_examples").loss
    scale = assert_same_objective(summed, per_sample, inputs)
    assert scale == pytest.approx(inputs.x.shape[0])


def test_claim_forgetting_m_gives_smaller_beta_is_false():
    """Seed 2: 'forgetting the factor m effectively applies a smaller beta'. FALSE: dropping m
    divides the reconstruction by m, so the effective beta RISES to m."""
    forgot = get_convention("keras_docs").__class__(
        "docs_without_m",
        "bernoulli",
        get_convention("size_average").recon_factor,
        get_convention("keras_docs").kl_base,
    )
    assert forgot.effective_beta(B=128, D=784, k=20) == 784 > 1


@given(vae_inputs(batch_sizes=st.integers(2, 6)))
def test_claim_forgetting_m_by_gradients(inputs):
    def docs_without_m(recon, x, mu, logvar):
        rec = torch.nn.functional.binary_cross_entropy(recon, x, reduction="none").mean(-1)
        kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(-1)
        return (rec + kl).mean()

    D = inputs.x.shape[1]
    # loss = (1/D) * (per-sample ELBO with beta = D)
    _, g = loss_gradients(docs_without_m, inputs)
    _, ref = loss_gradients(lambda *a: get_preset("kl_weight_c").loss(*a, c=D) / D, inputs)
    for a, b in zip(g, ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("c", [0, 0.02, 0.1, 0.5, 1, 2, 10, 20])
def test_claim_seed5_c_is_the_beta(c):
    """Seed 5: 'reconstruction (784 x BCE) + c * kl' is a beta-VAE with beta = c. TRUE."""
    conv = get_convention("kl_weight_c").with_kl_weight(c)
    assert conv.effective_beta(B=128, D=784, k=2) == pytest.approx(c)
