"""The collapse metrics and the trainer against closed-form linear-VAE theory
(Lucas et al. 2019): with decoder variance sigma^2 and KL weight beta, on data with covariance
eigenvalues lambda_i, latent direction i is active iff lambda_i > beta*sigma^2, with
KL_i = 0.5 log(lambda_i / (beta sigma^2)) and Var_x(E_q[z_i]) = 1 - beta sigma^2 / lambda_i.

The optimum is reached up to a slow rotation inside the active latent space, so variances
are compared through the eigenvalues of Cov_x(E_q[z]) (rotation-invariant)."""

import math

import numpy as np
import pytest
import torch

from vaeloss.engine.data import Dataset, linear_gaussian
from vaeloss.engine.evaluate import evaluate_models
from vaeloss.engine.models import BatchedLinearVAE
from vaeloss.engine.trainer import TrainConfig, train

X, TRUTH = linear_gaussian(4000, eigenvalues=(4.0, 2.0, 1.0, 0.5), noise_var=0.05, dim=8, seed=0)
XT = torch.tensor(X)
DATA = Dataset("linear-gaussian", XT[:3200], XT[3200:], None, None, (8,))
LAM = np.sort(np.linalg.eigvalsh(np.cov(X[:3200].T, bias=True)))[::-1]

# thresholds beta*sigma^2 = 0.25, 0.7, 1.5: 4, 3 and 2 active directions, eigenvalues >= 1.38x
# above and <= 0.8x below the threshold
SETTINGS = [
    pytest.param(1.0, 0.25, id="sigma2=1-beta=0.25"),
    pytest.param(0.35, 2.0, id="sigma2=0.35-beta=2"),
    pytest.param(0.5, 3.0, id="sigma2=0.5-beta=3"),
]


def _fit(sigma2, beta):
    model = BatchedLinearVAE(8, 6, n_models=1)
    cfg = TrainConfig(
        betas=[beta],
        likelihood="gaussian",
        sigma=math.sqrt(sigma2),
        epochs=1500,
        full_batch=True,
        lr=0.05,
        cosine_lr=True,
    )
    train(model, DATA, cfg)
    return model


@pytest.mark.slow
@pytest.mark.parametrize(("sigma2", "beta"), SETTINGS)
def test_linear_vae_matches_theory(sigma2, beta):
    thr = beta * sigma2
    model = _fit(sigma2, beta)
    expected_active = int((LAM > thr).sum())
    kl_theory = np.array([0.5 * math.log(l / thr) if l > thr else 0.0 for l in LAM[:6]])
    var_theory = np.array([1 - thr / l if l > thr else 0.0 for l in LAM[:6]])
    ev = evaluate_models(
        model,
        DATA.x_train,
        likelihood="gaussian",
        sigma=math.sqrt(sigma2),
        iwae_samples=1000,
        max_points=3200,
    )[0]
    assert ev.active_units == expected_active
    actual_kl = np.sort(ev.kl_per_dim)[::-1]
    assert np.abs(actual_kl - kl_theory).max() < 0.05
    assert ev.kl == pytest.approx(kl_theory.sum(), abs=0.02)
    mu, logvar = model.encode(DATA.x_train)
    cov_eig = np.sort(np.linalg.eigvalsh(np.cov(mu[0].detach().numpy().T, bias=True)))[::-1]
    assert np.abs(cov_eig - var_theory).max() < 0.01
    post_var = np.sort(logvar[0, 0].detach().exp().numpy())
    active_post = post_var[:expected_active]
    np.testing.assert_allclose(active_post, np.sort(thr / LAM[:expected_active]), rtol=0.02)
    # in this model I(x; z) equals the total KL (the aggregate posterior is the prior)
    assert ev.mutual_information == pytest.approx(ev.kl, abs=0.1)
    assert abs(ev.marginal_kl) < 0.1


@pytest.mark.slow
def test_iwae_approaches_exact_ppca_likelihood():
    """At beta = 1 the linear VAE's posterior is exact, so IWAE -> log p(x) of its decoder."""
    sigma2, beta = 0.25, 1.0
    model = _fit(sigma2, beta)
    W = model.dec_w[0].detach().double()  # [k, D]
    b = model.dec_b[0, 0].detach().double()
    cov = W.T @ W + sigma2 * torch.eye(8, dtype=torch.float64)
    x = DATA.x_val.double()
    exact = -torch.distributions.MultivariateNormal(b, cov).log_prob(x).mean().item()
    ev = evaluate_models(
        model, DATA.x_val, likelihood="gaussian", sigma=0.5, iwae_samples=2000, max_points=800
    )[0]
    elbo_nll = ev.recon + ev.kl
    assert ev.iwae_nll >= exact - 0.01  # a bound, up to Monte-Carlo error
    assert ev.iwae_nll - exact < 0.02
    assert elbo_nll > ev.iwae_nll
