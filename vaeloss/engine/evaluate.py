"""Evaluate every model of a trained batch on held-out data: the collapse metrics."""

from __future__ import annotations

import math
from collections.abc import Callable
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
from vaeloss.objective.likelihoods import (
    DecoderOutput,
    Likelihood,
    decoder_mean,
    default_decoder_output,
    element_nll,
)

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

    A value is None when its stage was not reached (the evaluation was interrupted).
    """

    recon: float | None
    kl: float
    elbo: float | None
    kl_per_dim: list[float]
    active_units: int
    au_variances: list[float]
    collapsed_dims: int
    mutual_information: float
    marginal_kl: float
    aggregate_kl: float
    iwae_nll: float | None
    output_diversity: float | None
    latent_usage: float | None

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
    should_stop: Callable[[], bool] | None = None,
) -> list[ModelMetrics]:
    """Metrics per model on data ``x`` [N, D] (at most ``max_points`` rows are used).

    In three stages: the posteriors (KL, active units, MI, aggregate KL), the reconstructions
    (reconstruction NLL, output diversity, latent usage), the IWAE bound. ``should_stop`` is
    asked between stages and between IWAE chunks; what was not measured when it says stop is
    None. When it already says stop at the start (training was interrupted), only a quick
    evaluation runs: the posteriors and one-sample reconstructions, no IWAE.

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
    kind = decoder_output or default_decoder_output(likelihood)
    quick = should_stop is not None and should_stop()

    def stop() -> bool:
        return not quick and should_stop is not None and should_stop()

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

    posterior = [_posterior_metrics(mu_all[s], logvar_all[s], g) for s in range(S)]
    # samples per decoder call, so that one call holds at most ~32M output elements
    chunk = max(1, min(100, 2**25 // (S * N * x.shape[1])))
    recon: list[float | None] = [None] * S
    diversity: list[float | None] = [None] * S
    usage: list[float | None] = [None] * S
    if not stop():
        n_rec = 1 if quick else recon_samples
        recon_sum = torch.zeros(S, device=device, dtype=mu_all.dtype)
        for start in range(0, n_rec, chunk):
            c = min(chunk, n_rec - start)
            eps = torch.randn((c, S, N, k), generator=g, device=device, dtype=mu_all.dtype)
            recon_sum -= log_lik(reparameterise(mu_all, logvar_all, eps), x).sum(dim=(0, 2))
        recon = (recon_sum / (n_rec * N)).tolist()
        means = decoder_mean(model.decode(mu_all), kind, likelihood)  # [S, N, D]
        prior = torch.randn(mu_all.shape, generator=g, device=device, dtype=mu_all.dtype)
        prior_means = decoder_mean(model.decode(prior), kind, likelihood)
        for s in range(S):
            gen = torch.Generator().manual_seed(seed)
            diversity[s] = output_diversity(means[s].cpu(), x.cpu(), generator=gen)
            usage[s] = latent_usage_from(means[s], prior_means[s], x)
    iwae: list[float | None] = [None] * S
    if not quick and not stop():
        nll = _iwae_chunked(x, mu_all, logvar_all, log_lik, iwae_samples, chunk, g, stop)
        if nll is not None:
            iwae = nll.mean(-1).tolist()
    out = []
    for s in range(S):
        p = posterior[s]
        r = recon[s]
        out.append(
            ModelMetrics(
                recon=r,
                elbo=None if r is None else -(r + p["kl"]),
                iwae_nll=iwae[s],
                output_diversity=diversity[s],
                latent_usage=usage[s],
                **p,
            )
        )
    return out


def _posterior_metrics(mu: Tensor, logvar: Tensor, g: torch.Generator) -> dict[str, Any]:
    """The metrics of one model that need only its posteriors [N, k]."""
    kl_d = kl_per_dim(mu, logvar)
    kl = float(kl_d.sum())
    mi = mutual_information(mu, logvar, generator=g)
    au = active_units(mu)
    return {
        "kl": kl,
        "kl_per_dim": kl_d.tolist(),
        "active_units": au.number,
        "au_variances": au.variances.tolist(),
        "collapsed_dims": int(collapsed_dims(mu, logvar).sum()),
        "mutual_information": mi,
        "marginal_kl": kl - mi,
        "aggregate_kl": aggregate_kl(mu, logvar),
    }


def _iwae_chunked(
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    log_lik: Callable[[Tensor, Tensor], Tensor],
    samples: int,
    chunk: int,
    g: torch.Generator,
    stop: Callable[[], bool],
) -> Tensor | None:
    """The IWAE bound with K = ``samples``, computed ``chunk`` samples at a time, asking
    ``stop`` between chunks (None when stopped).

    Exact combination: a chunk of c samples gives ``NLL_c = -(LSE_c - log c)``, and the bound
    of all K is ``-(logsumexp_chunks(log c - NLL_c) - log K)``.
    """
    parts = []
    for start in range(0, samples, chunk):
        if stop():
            return None
        c = min(chunk, samples - start)
        nll_c = iwae_nll(x, mu, logvar, log_lik, samples=c, chunk=c, generator=g)
        parts.append(math.log(c) - nll_c)
    return -(torch.logsumexp(torch.stack(parts), dim=0) - math.log(samples))
