"""Evaluate every model of a trained batch on held-out data: the collapse metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from vaeloss.metrics import (
    active_units,
    collapsed_dims,
    iwae_nll,
    kl_per_dim,
    latent_usage,
    mutual_information,
    output_diversity,
)
from vaeloss.models import BatchedVAE
from vaeloss.trainer import decoder_nll

__all__ = ["aggregate_kl", "decoder_mean", "evaluate_models"]


def aggregate_kl(mu: Tensor, logvar: Tensor) -> float:
    """KL from the moment-matched Gaussian of the aggregate posterior to N(0, I), nats.

    The aggregate posterior q(z) = mean_x q(z|x) has mean ``mean(mu)`` and covariance
    ``Cov(mu) + diag(mean(exp(logvar)))``; this is its Gaussian fit's KL to the prior.

    >>> round(aggregate_kl(torch.zeros(10, 2), torch.zeros(10, 2)), 6)
    0.0
    """
    m = mu.double().mean(0)
    c = torch.cov(mu.double().T, correction=0).reshape(mu.shape[1], mu.shape[1])
    c = c + torch.diag(logvar.double().exp().mean(0))
    k = mu.shape[1]
    return float(0.5 * (torch.trace(c) + m @ m - k - torch.logdet(c)))


def decoder_mean(out: Tensor, likelihood: str) -> Tensor:
    """The decoder's mean output: sigmoid of logits (Bernoulli) or the mean (Gaussian).

    For the continuous Bernoulli the mean of the distribution differs from lambda; lambda is
    returned, as is usual for pictures.
    """
    return out if likelihood == "gaussian" else torch.sigmoid(out)


@torch.no_grad()
def evaluate_models(
    model: BatchedVAE,
    x: Tensor,
    *,
    likelihood: str,
    sigma: float = 1.0,
    iwae_samples: int = 1000,
    max_points: int = 1000,
    seed: int = 0,
    recon_samples: int = 16,
) -> list[dict[str, Any]]:
    """Metrics per model on data ``x`` [N, D] (at most ``max_points`` rows are used).

    Returns one dict per model with: recon (``recon_samples``-sample estimate), kl (analytic),
    both nats per sample,
    elbo, kl_per_dim, active_units, au_variances, collapsed_dims, mutual_information,
    marginal_kl (= kl - MI, Hoffman & Johnson 2016), iwae_nll (K = ``iwae_samples``),
    output_diversity, latent_usage.
    """
    device = next(model.parameters()).device
    x = x[:max_points].to(device)
    mu_all, logvar_all = model.encode(x)
    out = []
    for s in range(model.n_models):
        g = torch.Generator(device=device).manual_seed(seed + s)
        mu, logvar = mu_all[s], logvar_all[s]

        def decode(z: Tensor, s: int = s) -> Tensor:
            lead = z.shape[:-1]
            zz = z.reshape(1, -1, z.shape[-1]).expand(model.n_models, -1, -1)
            return model.decode(zz.contiguous())[s].reshape(*lead, -1)

        def log_lik(z: Tensor, xx: Tensor, decode: Callable[[Tensor], Tensor] = decode) -> Tensor:
            return -decoder_nll(decode(z), xx, likelihood, sigma).sum(-1)

        eps = torch.randn((recon_samples, *mu.shape), generator=g, device=device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = float(-log_lik(z, x).mean())
        kl_d = kl_per_dim(mu, logvar)
        kl = float(kl_d.sum())
        mi = mutual_information(mu, logvar, generator=g)
        au = active_units(mu)
        nll = iwae_nll(x, mu, logvar, log_lik, samples=iwae_samples, generator=g)
        mean_out = decoder_mean(decode(mu), likelihood)
        out.append(
            {
                "recon": recon,
                "kl": kl,
                "elbo": -(recon + kl),
                "kl_per_dim": kl_d.tolist(),
                "active_units": au.number,
                "au_variances": au.variances.tolist(),
                "collapsed_dims": int(collapsed_dims(mu, logvar).sum()),
                "mutual_information": mi,
                "marginal_kl": kl - mi,
                "aggregate_kl": aggregate_kl(mu, logvar),
                "iwae_nll": float(nll.mean()),
                "output_diversity": output_diversity(
                    mean_out.cpu(), x.cpu(), generator=torch.Generator().manual_seed(seed)
                ),
                "latent_usage": latent_usage(
                    lambda zz: decoder_mean(decode(zz), likelihood), mu, x, generator=g
                ),
            }
        )
    return out
