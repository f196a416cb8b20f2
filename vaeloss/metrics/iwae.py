r"""The importance-weighted bound on -log p(x) (Burda et al. 2016) and its Monte-Carlo error."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from vaeloss.metrics.noise import ModelNoise
from vaeloss.metrics.posterior import log_normal
from vaeloss.objective.kl import reparameterise
from vaeloss.validation import check_positive_int

__all__ = ["IWAEBound", "iwae_bound", "iwae_log_weights", "iwae_nll"]


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
    generator: torch.Generator | ModelNoise | None = None,
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
    generator: torch.Generator | ModelNoise | None = None,
) -> Tensor:
    r"""Log importance weights :math:`\log p(x|z_k) + \log p(z_k) - \log q(z_k|x)` of
    ``samples`` draws :math:`z_k \sim q(z|x)`, [samples, ..., N] (nats).

    Shapes as :func:`iwae_nll`; ``mu``/``logvar`` may carry leading model dims [S, N, k], and
    then ``generator`` may be a :class:`~vaeloss.metrics.noise.ModelNoise` (a generator per model).
    """
    eps = (
        generator.draw(samples, mu.shape, dtype=mu.dtype)
        if isinstance(generator, ModelNoise)
        else torch.randn((samples, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
    )
    z = reparameterise(mu, logvar, eps)
    return (
        log_likelihood(z, x)
        + log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        - log_normal(z, mu, logvar)
    )
