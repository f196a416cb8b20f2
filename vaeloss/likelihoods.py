r"""Element-wise negative log-likelihoods of decoders, in nats.

Every function returns a tensor of the target's shape: the NLL of each data element
(pixel), in nats. Reductions over data dims and the batch happen in
:mod:`vaeloss.elbo`, so that every reduction is explicit.

Maths:

* Bernoulli: :math:`-[x \log p + (1-x) \log(1-p)]` (the BCE of PyTorch).
* Gaussian: :math:`\tfrac12 ((x-\mu)/\sigma)^2 + \log\sigma + \tfrac12\log 2\pi`.
* Continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): BCE minus
  :math:`\log C(\lambda)` with :math:`C(\lambda) = \eta / \tanh(\eta/2)` where
  :math:`\eta = \operatorname{logit}\lambda` (equal to
  :math:`2\,\operatorname{artanh}(1-2\lambda)/(1-2\lambda)`, and 2 at
  :math:`\lambda = 1/2`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vaeloss.validation import (
    check_positive,
    check_probabilities,
    check_same_shape,
    check_tensor,
)

__all__ = [
    "bernoulli_nll",
    "bernoulli_nll_logits",
    "continuous_bernoulli_log_norm",
    "continuous_bernoulli_nll",
    "continuous_bernoulli_nll_logits",
    "gaussian_nll",
    "optimal_sigma",
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _pair(recon: Tensor, target: Tensor, recon_name: str) -> None:
    check_tensor(recon_name, recon)
    check_tensor("target", target)
    check_same_shape(recon_name, recon, "target", target)


def bernoulli_nll(probs: Tensor, target: Tensor) -> Tensor:
    """Bernoulli NLL from decoder probabilities.

    Args:
        probs: decoder output in [0, 1], shape [B, *D].
        target: data in [0, 1], shape [B, *D].

    Returns:
        NLL per element, shape [B, *D], nats. Safe at probabilities of exactly 0 and 1
        (log is clamped at -100, as in ``F.binary_cross_entropy``).

    >>> bernoulli_nll(torch.tensor([[0.5]]), torch.tensor([[1.0]]))
    tensor([[0.6931]])
    """
    _pair(probs, target, "probs")
    check_probabilities("probs", probs)
    check_probabilities("target", target)
    return F.binary_cross_entropy(probs, target, reduction="none")


def bernoulli_nll_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Bernoulli NLL from decoder logits (numerically stable for any logit).

    Args:
        logits: decoder output before the sigmoid, shape [B, *D].
        target: data in [0, 1], shape [B, *D].

    Returns:
        NLL per element, shape [B, *D], nats.

    >>> bernoulli_nll_logits(torch.tensor([[0.0]]), torch.tensor([[0.0]]))
    tensor([[0.6931]])
    """
    _pair(logits, target, "logits")
    check_probabilities("target", target)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def gaussian_nll(
    mean: Tensor,
    target: Tensor,
    *,
    sigma: float | Tensor = 1.0,
    log_sigma: Tensor | None = None,
) -> Tensor:
    """Gaussian NLL with a fixed sigma (scalar or per dimension) or a learned ``log_sigma``.

    Args:
        mean: decoder mean, shape [B, *D].
        target: data, shape [B, *D].
        sigma: decoder standard deviation: a float, or a tensor broadcastable to [B, *D].
        log_sigma: learned log standard deviation broadcastable to [B, *D]; overrides ``sigma``.

    Returns:
        NLL per element, shape [B, *D], nats.

    >>> gaussian_nll(torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    tensor([[1.4189]])
    """
    _pair(mean, target, "mean")
    if log_sigma is None:
        if isinstance(sigma, Tensor):
            if bool((sigma <= 0).any()) or not bool(torch.isfinite(sigma).all()):
                check_positive("sigma", float(sigma.min()))
            log_sigma = torch.log(sigma.to(mean.dtype))
        else:
            log_sigma = torch.tensor(math.log(check_positive("sigma", sigma)), dtype=mean.dtype)
    z = (target - mean) * torch.exp(-log_sigma)
    return 0.5 * z.square() + log_sigma + _HALF_LOG_2PI


def optimal_sigma(mean: Tensor, target: Tensor, *, min_sigma: float = 1e-6) -> Tensor:
    """The maximum-likelihood shared sigma for given reconstructions (sigma-VAE).

    ``sigma^2 = mean((target - mean)^2)`` over every element of the batch.

    Args:
        mean: decoder mean, shape [B, *D].
        target: data, shape [B, *D].
        min_sigma: lower bound that keeps the NLL finite for perfect reconstructions.

    Returns:
        Scalar tensor, the sigma (same unit as the data).

    >>> optimal_sigma(torch.zeros(2, 2), torch.tensor([[1.0, -1.0], [1.0, -1.0]]))
    tensor(1.)
    """
    _pair(mean, target, "mean")
    check_positive("min_sigma", min_sigma)
    return (target - mean).square().mean().sqrt().clamp_min(min_sigma)


def continuous_bernoulli_log_norm(logits: Tensor) -> Tensor:
    """Log of the continuous-Bernoulli normaliser C(lambda), from logits.

    Args:
        logits: any shape, logit of the parameter lambda.

    Returns:
        ``log C`` of the same shape, nats; ``log 2`` at logit 0.

    >>> continuous_bernoulli_log_norm(torch.tensor([0.0]))
    tensor([0.6931])
    """
    a = logits.abs()
    small = a < 0.1
    safe = torch.where(small, torch.ones_like(a), a)
    far = torch.log(safe) - torch.log(torch.tanh(safe / 2))
    sq = a.square()
    near = math.log(2.0) + sq / 12 - 7 * sq.square() / 1440
    return torch.where(small, near, far)


def continuous_bernoulli_nll_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Continuous-Bernoulli NLL from logits, for [0, 1]-valued (non-binary) data.

    Args:
        logits: decoder output before the sigmoid, shape [B, *D].
        target: data in [0, 1], shape [B, *D].

    Returns:
        NLL per element, shape [B, *D], nats (can be negative: it is a density).

    >>> continuous_bernoulli_nll_logits(torch.tensor([[0.0]]), torch.tensor([[0.3]]))
    tensor([[0.]])
    """
    _pair(logits, target, "logits")
    check_probabilities("target", target)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return bce - continuous_bernoulli_log_norm(logits)


def continuous_bernoulli_nll(probs: Tensor, target: Tensor) -> Tensor:
    """Continuous-Bernoulli NLL from probabilities (clamped to [eps, 1-eps] of the dtype).

    Args:
        probs: decoder output in [0, 1], shape [B, *D].
        target: data in [0, 1], shape [B, *D].

    Returns:
        NLL per element, shape [B, *D], nats.

    >>> continuous_bernoulli_nll(torch.tensor([[0.5]]), torch.tensor([[0.3]]))
    tensor([[0.]])
    """
    _pair(probs, target, "probs")
    check_probabilities("probs", probs)
    eps = torch.finfo(probs.dtype).eps
    clamped = probs.clamp(eps, 1 - eps)
    logits = torch.log(clamped) - torch.log1p(-clamped)
    return continuous_bernoulli_nll_logits(logits, target)
