r"""Posterior-collapse metrics: pure functions of one model's posteriors and decoder.

Shapes: ``mu``, ``logvar`` are [N, k] (N data points, k latent dims); ``x`` is [N, D].
Every value is in nats unless it is a count or a ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from vaeloss.objective.kl import kl_normal, reparameterise
from vaeloss.objective.likelihoods import gaussian_nll_from_sq
from vaeloss.validation import check_positive, check_positive_int, check_same_shape

__all__ = [
    "ACTIVE_THRESHOLD",
    "ActiveUnits",
    "IWAEBound",
    "active_units",
    "collapsed_dims",
    "iwae_bound",
    "iwae_log_weights",
    "iwae_nll",
    "kl_per_dim",
    "latent_usage",
    "latent_usage_from",
    "mutual_information",
    "output_diversity",
]

ACTIVE_THRESHOLD = 0.01
"""A latent dim is active when Var_x(E_q[z_j | x]) exceeds this (Burda et al. 2016)."""


class ActiveUnits(NamedTuple):
    """Number of active latent dims and the variance behind each decision."""

    number: int
    variances: Tensor  # [k]: Var_x(E_q[z_j | x])
    active: Tensor  # [k] bool


def active_units(mu: Tensor, *, threshold: float = ACTIVE_THRESHOLD) -> ActiveUnits:
    """Active units (Burda et al. 2016): dims whose posterior mean varies over the data,
    ``Var_x(E_q[z_j]) > threshold``.

    Args:
        mu: posterior means, [N, k].
        threshold: variance above which a dim counts as active (0.01).

    >>> active_units(torch.tensor([[0.0, 1.0], [0.0, -1.0]])).number
    1
    """
    check_positive("threshold", threshold)
    var = mu.var(dim=0, unbiased=False)
    active = var > threshold
    return ActiveUnits(int(active.sum()), var, active)


def kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z_j|x) || N(0, 1)) averaged over the data, [k], nats.

    >>> kl_per_dim(torch.zeros(3, 2), torch.zeros(3, 2))
    tensor([0., 0.])
    """
    check_same_shape("mu", mu, "logvar", logvar)
    return kl_normal(mu, logvar).mean(0)


def collapsed_dims(mu: Tensor, logvar: Tensor, *, eps: float = 0.01, delta: float = 0.01) -> Tensor:
    """(eps, delta)-collapse per dim (Lucas et al. 2019): dim j is collapsed when
    ``P_x[ KL(q(z_j|x) || p(z_j)) < eps ] >= 1 - delta``. Returns [k] bool.

    >>> collapsed_dims(torch.zeros(4, 2), torch.zeros(4, 2)).tolist()
    [True, True]
    """
    kl = kl_normal(mu, logvar)
    return (kl < eps).float().mean(0) >= 1 - delta


def _log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dim."""
    return -gaussian_nll_from_sq((z - mu).square(), logvar).sum(-1)


def mutual_information(
    mu: Tensor, logvar: Tensor, *, generator: torch.Generator | None = None, chunk: int = 1024
) -> float:
    r"""I_q(x; z) with the aggregate-posterior estimator of He et al. (2019), nats.

    .. math:: I = \mathbb{E}_x\mathbb{E}_{q(z|x)}[\log q(z|x)] - \mathbb{E}_x\mathbb{E}_{q(z|x)}[\log q(z)],
       \quad q(z) \approx \tfrac1N \textstyle\sum_n q(z \mid x_n).

    One sample z_i ~ q(z|x_i) per data point; both expectations are estimated at those samples.
    Bias: it can never exceed :math:`\log N` (N = number of data points used), because
    ``log q(z_i) >= log q(z_i|x_i) - log N``; with N small it underestimates large MI.

    >>> mutual_information(torch.zeros(50, 2), torch.zeros(50, 2)) < 0.05
    True
    """
    check_same_shape("mu", mu, "logvar", logvar)
    N = mu.shape[0]
    z = reparameterise(
        mu, logvar, torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    )
    # log q(z_i|x_i) at the same samples, so that every term is <= log N exactly
    log_q_own = _log_normal(z, mu, logvar)
    log_qz = []
    for start in range(0, N, chunk):
        zc = z[start : start + chunk].unsqueeze(1)  # [c, 1, k]
        log_q = _log_normal(zc, mu.unsqueeze(0), logvar.unsqueeze(0))  # [c, N]
        log_qz.append(torch.logsumexp(log_q, dim=1) - math.log(N))
    return float((log_q_own - torch.cat(log_qz)).mean())


def iwae_nll(
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    log_likelihood: Callable[[Tensor, Tensor], Tensor],
    *,
    samples: int = 1000,
    chunk: int = 100,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Importance-weighted bound on -log p(x) with K samples (Burda et al. 2016), [N], nats.

    .. math:: -\log \frac1K \sum_{k} \frac{p(x|z_k)\,p(z_k)}{q(z_k|x)}, \quad z_k \sim q(z|x)

    Args:
        x: data [N, D]; mu, logvar: posteriors [N, k].
        log_likelihood: ``(z [K', N, k], x [N, D]) -> log p(x|z) [K', N]``.
        samples: K (>= 1000 recommended for evaluation); chunk: samples per decoder call.
    """
    check_positive_int("samples", samples, example=1000)
    check_positive_int("chunk", chunk, example=100)
    found = iwae_bound(x, mu, logvar, log_likelihood, samples=samples, chunk=chunk, generator=generator)
    assert found is not None  # no ``stop`` to end it early
    return found.nll.to(mu.dtype)


class IWAEBound(NamedTuple):
    """The IWAE bound per row [..., N] (nats, float64), the Monte-Carlo variance of each row's
    estimate [..., N], and the number of samples K they were computed from."""

    nll: Tensor
    variance: Tensor
    samples: int


def iwae_bound(
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    log_likelihood: Callable[[Tensor, Tensor], Tensor],
    *,
    samples: int,
    chunk: int,
    generator: torch.Generator | None = None,
    stop: Callable[[], bool] | None = None,
    enough: Callable[[], bool] | None = None,
    advance: Callable[[int], object] | None = None,
) -> IWAEBound | None:
    r"""The IWAE bound per row and the Monte-Carlo variance of each row's estimate, from
    ``samples`` draws taken ``chunk`` at a time.

    With log weights :math:`\ell_k` of a row the bound is :math:`-(\mathrm{LSE}_k \ell_k -
    \log K)`, accumulated exactly over chunks. Its variance over draws is, by the delta
    method, :math:`\sum_k \tilde w_k^2 - 1/K` with normalised weights :math:`\tilde w_k =
    e^{\ell_k - \mathrm{LSE}(\ell)}` (1/ESS - 1/K); it understates the error when the weights
    are heavy-tailed (a poor encoder). ``mu``/``logvar`` may carry leading model dims [S, N, k].
    ``stop()`` is asked before each chunk (when it says so, None is returned); ``enough()``
    after each chunk (when it says so, the bound of the samples drawn so far is returned: a
    time budget ran out); ``advance(c)`` is told after each chunk of c samples (a progress bar).
    """
    lse = lse2 = None
    done = 0
    while done < samples:
        if stop is not None and stop():
            return None
        c = min(chunk, samples - done)
        log_w = iwae_log_weights(x, mu, logvar, log_likelihood, samples=c, generator=generator).double()
        a, b = torch.logsumexp(log_w, 0), torch.logsumexp(2 * log_w, 0)
        lse = a if lse is None else torch.logaddexp(lse, a)
        lse2 = b if lse2 is None else torch.logaddexp(lse2, b)
        done += c
        if advance is not None:
            advance(c)
        if enough is not None and done < samples and enough():
            break
    assert lse is not None and lse2 is not None
    return IWAEBound(-(lse - math.log(done)), (torch.exp(lse2 - 2 * lse) - 1 / done).clamp_min(0), done)


def iwae_log_weights(
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    log_likelihood: Callable[[Tensor, Tensor], Tensor],
    *,
    samples: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Log importance weights :math:`\log p(x|z_k) + \log p(z_k) - \log q(z_k|x)` of
    ``samples`` draws :math:`z_k \sim q(z|x)`, [samples, ..., N] (nats).

    Shapes as :func:`iwae_nll`; ``mu``/``logvar`` may carry leading model dims [S, N, k].
    """
    eps = torch.randn((samples, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
    z = reparameterise(mu, logvar, eps)
    return (
        log_likelihood(z, x)
        + _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        - _log_normal(z, mu, logvar)
    )


def _subsample(n: int, max_points: int, generator: torch.Generator | None) -> Tensor | None:
    """Row indices of a random subset of at most ``max_points`` rows (None: all rows)."""
    return torch.randperm(n, generator=generator)[:max_points] if n > max_points else None


def _mean_pairwise(a: Tensor, idx: Tensor | None = None) -> Tensor:
    """Mean Euclidean distance between distinct rows of ``a`` [N, ...] (or rows ``idx``)."""
    if idx is not None:
        a = a[idx.to(a.device)]
    flat = a.reshape(a.shape[0], -1)
    d = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
    n = a.shape[0]
    return d.sum() / max(1, n * (n - 1))


def output_diversity(
    recon: Tensor, x: Tensor, *, max_points: int = 500, generator: torch.Generator | None = None
) -> float:
    """Mean pairwise distance between reconstructions of different inputs, relative to that
    between the inputs (the same rows for both). Near 0: every input gives the same output.

    >>> output_diversity(torch.ones(4, 3), torch.eye(4, 3))
    0.0
    """
    check_same_shape("recon", recon, "x", x)
    idx = _subsample(x.shape[0], max_points, generator)
    num, den = _mean_pairwise(recon, idx), _mean_pairwise(x, idx)
    return float(num / den) if float(den) > 0 else 0.0


def latent_usage(
    decode: Callable[[Tensor], Tensor],
    mu: Tensor,
    x: Tensor,
    *,
    generator: torch.Generator | None = None,
) -> float:
    """How much reconstructions change when the posterior mean is replaced by a prior sample:
    ``mean ||dec(mu(x)) - dec(z~p)|| / mean ||x_i - x_j||``. Near 0: the decoder ignores z.
    """
    z = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return latent_usage_from(decode(mu), decode(z), x)


def latent_usage_from(recon_at_mean: Tensor, recon_at_prior: Tensor, x: Tensor) -> float:
    """:func:`latent_usage` from decoded outputs ``dec(mu(x))`` and ``dec(z ~ p)`` [N, D] and the
    data x [N, D].

    >>> latent_usage_from(torch.ones(3, 2), torch.ones(3, 2), torch.eye(3, 2))
    0.0
    """
    diff = (recon_at_mean - recon_at_prior).reshape(x.shape[0], -1).norm(dim=-1).mean()
    den = _mean_pairwise(x, _subsample(x.shape[0], 500, None))
    return float(diff / den) if float(den) > 0 else 0.0
