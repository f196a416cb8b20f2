"""Evaluate every model of a trained batch on held-out data: the collapse metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from vaeloss.engine.models import BatchedVAE
from vaeloss.metrics import (
    active_units,
    collapsed_dims,
    iwae_nll,
    kl_per_dim,
    latent_usage_from,
    mutual_information,
    output_diversity,
)
from vaeloss.objective.kl import reparameterise
from vaeloss.objective.likelihoods import DecoderOutput, Likelihood, decoder_mean, element_nll

__all__ = ["ModelMetrics", "aggregate_kl", "evaluate_models"]


@dataclass(frozen=True)
class ModelMetrics:
    """The collapse metrics of one model on held-out data (nats per sample unless stated).

    Attributes:
        recon: reconstruction NLL (Monte-Carlo estimate); kl: analytic KL to the prior.
        elbo: ``-(recon + kl)``.
        kl_per_dim: KL per latent dim [k].
        active_units: dims with Var_x E[z_j] above the threshold; au_variances: those variances [k].
        collapsed_dims: number of (eps, delta)-collapsed dims (Lucas et al. 2019).
        mutual_information: I(x; z) (He et al. 2019 estimator, at most log N).
        marginal_kl: ``kl - mutual_information`` (Hoffman & Johnson 2016).
        aggregate_kl: KL of the aggregate posterior's moment-matched Gaussian to N(0, I).
        iwae_nll: importance-weighted bound on -log p(x).
        output_diversity: pairwise distance of reconstructions relative to the inputs' (ratio).
        latent_usage: change of the output when z is replaced by a prior sample (ratio).
    """

    recon: float
    kl: float
    elbo: float
    kl_per_dim: list[float]
    active_units: int
    au_variances: list[float]
    collapsed_dims: int
    mutual_information: float
    marginal_kl: float
    aggregate_kl: float
    iwae_nll: float
    output_diversity: float
    latent_usage: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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


@torch.no_grad()
def evaluate_models(
    model: BatchedVAE,
    x: Tensor,
    *,
    likelihood: Likelihood,
    decoder_output: DecoderOutput | None = None,
    sigma: float = 1.0,
    iwae_samples: int = 1000,
    max_points: int = 1000,
    seed: int = 0,
    recon_samples: int = 16,
) -> list[ModelMetrics]:
    """Metrics per model on data ``x`` [N, D] (at most ``max_points`` rows are used).

    Args:
        model: S trained models.
        x: held-out data [N, D].
        likelihood: the decoder's likelihood; decoder_output: what it emits (default: logits
            for Bernoulli kinds, mean for Gaussian, as the built-in models do).
        sigma: Gaussian decoder std.
        iwae_samples: K of the IWAE bound; recon_samples: samples of the reconstruction term.

    Returns:
        One :class:`ModelMetrics` per model.
    """
    kind: DecoderOutput = decoder_output or ("mean" if likelihood == "gaussian" else "logits")
    device = next(model.parameters()).device
    x = x[:max_points].to(device)
    mu_all, logvar_all = model.encode(x)  # [S, N, k]
    S, N, k = mu_all.shape
    g = torch.Generator(device=device).manual_seed(seed)

    def log_lik(z: Tensor, xx: Tensor) -> Tensor:
        """log p(x|z) for every model at once: z [c, S, N, k] -> [c, S, N]."""
        c = z.shape[0]
        flat = z.transpose(0, 1).reshape(S, c * N, k)
        out = model.decode(flat)
        nll = element_nll(
            out, xx.repeat(c, 1), likelihood=likelihood, decoder_output=kind, sigma=sigma, validate=False
        )
        return -nll.sum(-1).reshape(S, c, N).transpose(0, 1)

    # samples per decoder call, so that one call holds at most ~32M output elements
    chunk = max(1, min(100, 2**25 // (S * N * x.shape[1])))
    recon_sum = torch.zeros(S, device=device, dtype=mu_all.dtype)
    for start in range(0, recon_samples, chunk):
        c = min(chunk, recon_samples - start)
        eps = torch.randn((c, S, N, k), generator=g, device=device, dtype=mu_all.dtype)
        recon_sum -= log_lik(reparameterise(mu_all, logvar_all, eps), x).sum(dim=(0, 2))
    recon_all = recon_sum / (recon_samples * N)  # [S]
    nll_all = iwae_nll(
        x, mu_all, logvar_all, log_lik, samples=iwae_samples, chunk=chunk, generator=g
    )  # [S, N]
    means = decoder_mean(model.decode(mu_all), kind)  # [S, N, D]
    prior = torch.randn(mu_all.shape, generator=g, device=device, dtype=mu_all.dtype)
    prior_means = decoder_mean(model.decode(prior), kind)
    out = []
    for s in range(S):
        mu, logvar = mu_all[s], logvar_all[s]
        recon = float(recon_all[s])
        kl_d = kl_per_dim(mu, logvar)
        kl = float(kl_d.sum())
        mi = mutual_information(mu, logvar, generator=g)
        au = active_units(mu)
        out.append(
            ModelMetrics(
                recon=recon,
                kl=kl,
                elbo=-(recon + kl),
                kl_per_dim=kl_d.tolist(),
                active_units=au.number,
                au_variances=au.variances.tolist(),
                collapsed_dims=int(collapsed_dims(mu, logvar).sum()),
                mutual_information=mi,
                marginal_kl=kl - mi,
                aggregate_kl=aggregate_kl(mu, logvar),
                iwae_nll=float(nll_all[s].mean()),
                output_diversity=output_diversity(
                    means[s].cpu(), x.cpu(), generator=torch.Generator().manual_seed(seed)
                ),
                latent_usage=latent_usage_from(means[s], prior_means[s], x),
            )
        )
    return out
