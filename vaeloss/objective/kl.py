r"""KL divergence of a diagonal Gaussian posterior to the prior N(0, I), in nats.

Analytic, per latent dimension:
:math:`\mathrm{KL}_j = \tfrac12(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)`, zero exactly
at the prior. The posterior scale may be given as log-variance, log-std, std or variance.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from vaeloss.objective.likelihoods import gaussian_nll_from_sq
from vaeloss.validation import check_choice, check_same_shape, check_tensor

__all__ = [
    "LatentParameterisation",
    "PARAMETERISATIONS",
    "kl_monte_carlo",
    "kl_normal",
    "reparameterise",
    "to_logvar",
]

LatentParameterisation = Literal["logvar", "log_std", "std", "var"]
PARAMETERISATIONS: tuple[LatentParameterisation, ...] = ("logvar", "log_std", "std", "var")


def to_logvar(scale: Tensor, *, parameterisation: LatentParameterisation = "logvar") -> Tensor:
    """Convert a posterior scale in any parameterisation to log-variance.

    Args:
        scale: shape [B, k]; log-variance, log-std, std (> 0) or variance (> 0).
        parameterisation: which of those ``scale`` is.

    Returns:
        log-variance, shape [B, k].

    >>> to_logvar(torch.tensor([[1.0]]), parameterisation="std")
    tensor([[0.]])
    """
    check_choice("parameterisation", parameterisation, PARAMETERISATIONS)
    if parameterisation == "logvar":
        return scale
    if parameterisation == "log_std":
        return 2 * scale
    if parameterisation == "std":
        return 2 * torch.log(scale)
    return torch.log(scale)


def reparameterise(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """A sample of N(mu, diag exp(logvar)) from standard-normal noise: ``mu + exp(logvar/2) eps``.

    Args:
        mu, logvar: posterior parameters [..., k]; eps: noise broadcastable to them.

    Returns:
        Samples of the broadcast shape.

    >>> reparameterise(torch.zeros(1), torch.log(torch.tensor([4.0])), torch.ones(1))
    tensor([2.])
    """
    return mu + torch.exp(0.5 * logvar) * eps


def kl_normal(mu: Tensor, scale: Tensor, *, parameterisation: LatentParameterisation = "logvar") -> Tensor:
    """Analytic KL( N(mu, diag sigma^2) || N(0, I) ) per latent dimension.

    Args:
        mu: posterior means, shape [B, k].
        scale: posterior scales in ``parameterisation``, shape [B, k].
        parameterisation: "logvar" | "log_std" | "std" | "var".

    Returns:
        KL per element, shape [B, k], nats. Finite for logvar in [-30, 30] in float32.

    >>> kl_normal(torch.zeros(1, 2), torch.zeros(1, 2))
    tensor([[0., 0.]])
    """
    check_tensor("mu", mu)
    check_tensor("scale", scale)
    check_same_shape("mu", mu, "scale", scale)
    logvar = to_logvar(scale, parameterisation=parameterisation)
    # expm1(x) - x is exact near 0, where exp(x) - 1 - x cancels.
    return 0.5 * (mu.square() + torch.expm1(logvar) - logvar)


def kl_monte_carlo(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Single-sample Monte-Carlo KL estimate log q(z|x) - log p(z) per latent dimension.

    Args:
        z: samples from q, shape [..., B, k] (leading sample dims allowed).
        mu: posterior means, shape [B, k].
        logvar: posterior log-variances, shape [B, k].

    Returns:
        Estimate per element, shape of ``z``, nats; its mean over samples is unbiased
        for :func:`kl_normal`.

    >>> kl_monte_carlo(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))
    tensor([[0.]])
    """
    check_tensor("z", z)
    check_same_shape("mu", mu, "logvar", logvar)
    # -log q(z|x) + log p(z), each the Gaussian NLL of its squared error
    return gaussian_nll_from_sq(z.square(), 0.0) - gaussian_nll_from_sq((z - mu).square(), logvar)
