"""Evaluate every model of a trained batch on held-out data: the collapse metrics."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from vaeloss.engine.models import BatchedVAE
from vaeloss.metrics import (
    active_units,
    collapsed_dims,
    iwae_bound,
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

__all__ = ["EvaluationPlan", "ModelMetrics", "aggregate_kl", "evaluate_models", "plan_evaluation"]


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
        iwae_nll: importance-weighted bound on -log p(x); iwae_se: its Monte-Carlo standard
            error (delta method, see :func:`_iwae_chunked`).
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
    iwae_se: float | None
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


@dataclass(frozen=True)
class EvaluationPlan:
    """How much the evaluation measures, chosen to fit its time budget.

    Attributes:
        iwae_samples: K of the IWAE bound; rows: held-out rows used.
        decode_seconds: measured seconds of one pass of the decoder and the likelihood over
            ``rows`` rows for all models (one posterior sample per row).
        budget_seconds: the budget it was chosen for (None: no budget, K as asked).
    """

    iwae_samples: int
    rows: int
    decode_seconds: float = 0.0
    budget_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def samples_per_call(n_models: int, rows: int, data_dim: int) -> int:
    """Posterior samples per decoder call: at most 100, and at most ~8M output elements per
    call (a conv decoder's activations are many times its output).

    >>> samples_per_call(9, 359, 64), samples_per_call(1, 100, 12288)
    (40, 6)
    """
    return max(1, min(100, 2**23 // (n_models * rows * data_dim)))


MIN_IWAE_SAMPLES = 64
"""The smallest K the evaluation budget may choose (below it the bound is loose)."""
MIN_EVAL_ROWS = 200
"""The fewest held-out rows the budget may choose (when there are that many)."""
_RECON_SAMPLES = 16


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _log_likelihood(
    model: BatchedVAE, *, likelihood: Likelihood, kind: DecoderOutput, sigma: float
) -> Callable[[Tensor, Tensor], Tensor]:
    """log p(x|z) for every model at once: (z [c, S, N, k], x [N, D]) -> [c, S, N], nats."""

    def log_lik(z: Tensor, xx: Tensor) -> Tensor:
        c, S, N, k = z.shape
        flat = z.transpose(0, 1).reshape(S, c * N, k)
        out = model.decode(flat)
        nll = element_nll(
            out, xx.repeat(c, 1), likelihood=likelihood, decoder_output=kind, sigma=sigma, validate=False
        )
        return -nll.sum(-1).reshape(S, c, N).transpose(0, 1)

    return log_lik


@torch.no_grad()
def plan_evaluation(
    model: BatchedVAE,
    x: Tensor,
    *,
    max_samples: int,
    max_rows: int = 1000,
    budget_seconds: float | None,
    likelihood: Likelihood = "bernoulli",
    decoder_output: DecoderOutput | None = None,
    sigma: float = 1.0,
) -> EvaluationPlan:
    """Choose K and the rows for ``budget_seconds``: time one pass of the likelihood (decoder
    and NLL) over the rows for every model, keep K = ``max_samples`` if it fits, else lower K
    (down to :data:`MIN_IWAE_SAMPLES`), then the rows (down to :data:`MIN_EVAL_ROWS`)."""
    rows = min(max_rows, x.shape[0])
    if budget_seconds is None:
        return EvaluationPlan(max_samples, rows)
    device = next(model.parameters()).device
    model.eval()
    xs = x[:rows].to(device)
    mu, _ = model.encode(xs)
    c = samples_per_call(mu.shape[0], rows, x.shape[1])
    z = mu.unsqueeze(0).expand(c, -1, -1, -1)  # one call as the evaluation makes them
    kind = decoder_output or default_decoder_output(likelihood)
    log_lik = _log_likelihood(model, likelihood=likelihood, kind=kind, sigma=sigma)
    log_lik(z, xs)  # the first call pays one-off costs
    _synchronize(device)  # a GPU runs asynchronously: let the first call finish before timing
    t0 = time.perf_counter()
    log_lik(z, xs)
    _synchronize(device)
    per_pass = max((time.perf_counter() - t0) / c, 1e-6)
    passes = int(budget_seconds / per_pass) - _RECON_SAMPLES - 2
    K = min(max_samples, max(MIN_IWAE_SAMPLES, passes))
    if passes < MIN_IWAE_SAMPLES:
        share = budget_seconds / ((MIN_IWAE_SAMPLES + _RECON_SAMPLES + 2) * per_pass)
        rows = max(min(MIN_EVAL_ROWS, rows), int(rows * share))
    return EvaluationPlan(K, rows, per_pass, budget_seconds)


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
    recon_samples: int = _RECON_SAMPLES,
    should_stop: Callable[[], bool] | None = None,
    progress: bool = False,
) -> list[ModelMetrics]:
    """Metrics per model on data ``x`` [N, D] (at most ``max_points`` rows are used), with
    the models in ``eval()`` mode.

    In three stages: the posteriors (KL, active units, MI, aggregate KL), the reconstructions
    (reconstruction NLL, output diversity, latent usage), the IWAE bound with its Monte-Carlo
    standard error. ``should_stop`` is asked between stages and between IWAE chunks; what
    was not measured when it says stop is None. When it already says stop at the start
    (training was interrupted), only a quick evaluation runs: the posteriors and one-sample
    reconstructions, no IWAE.

    Args:
        model: S trained models.
        x: held-out data [N, D].
        likelihood: the decoder's likelihood; decoder_output: what it emits (default: logits
            for Bernoulli kinds, mean for Gaussian, as the built-in models do).
        sigma: Gaussian decoder std.
        iwae_samples: K of the IWAE bound; recon_samples: samples of the reconstruction term.
        progress: show a progress bar over the IWAE chunks (on stderr).

    Returns:
        One :class:`ModelMetrics` per model.
    """
    kind = decoder_output or default_decoder_output(likelihood)
    quick = should_stop is not None and should_stop()

    def stop() -> bool:
        return not quick and should_stop is not None and should_stop()

    model.eval()
    device = next(model.parameters()).device
    x = x[:max_points].to(device)
    mu_all, logvar_all = model.encode(x)  # [S, N, k]
    S, N, k = mu_all.shape
    g = torch.Generator(device=device).manual_seed(seed)

    log_lik = _log_likelihood(model, likelihood=likelihood, kind=kind, sigma=sigma)
    posterior = [_posterior_metrics(mu_all[s], logvar_all[s], g) for s in range(S)]
    chunk = samples_per_call(S, N, x.shape[1])
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
    iwae_se: list[float | None] = [None] * S
    if not quick and not stop():
        bar = tqdm(
            total=iwae_samples, disable=not progress, unit="sample", leave=False, file=sys.stderr, desc="IWAE"
        )
        try:
            found = _iwae_chunked(x, mu_all, logvar_all, log_lik, iwae_samples, chunk, g, stop, bar.update)
        finally:
            bar.close()
        if found is not None:
            nll, se = found
            iwae, iwae_se = nll.tolist(), se.tolist()
    out = []
    for s in range(S):
        p = posterior[s]
        r = recon[s]
        out.append(
            ModelMetrics(
                recon=r,
                elbo=None if r is None else -(r + p["kl"]),
                iwae_nll=iwae[s],
                iwae_se=iwae_se[s],
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
    advance: Callable[[int], Any],
) -> tuple[Tensor, Tensor] | None:
    """The IWAE bound (:func:`vaeloss.metrics.iwae_bound`) per model [S], mean over rows, and
    its Monte-Carlo standard error [S]: rows are independent, so the mean over N rows has
    standard error sqrt(sum of the rows' variances) / N. ``stop`` is asked between chunks
    (None when stopped); ``advance`` gets the samples done (a progress bar)."""

    found = iwae_bound(
        x, mu, logvar, log_lik, samples=samples, chunk=chunk, generator=g, stop=stop, advance=advance
    )
    if found is None:
        return None
    nll, var = found  # [S, N]
    return nll.mean(-1), var.sum(-1).sqrt() / nll.shape[-1]
