r"""Element-wise negative log-likelihoods of decoders, in nats.

Every function returns a tensor of the target's shape: the NLL of each data element
(pixel), in nats. Reductions over data dims and the batch happen in
:mod:`vaeloss.objective.elbo`, so that every reduction is explicit.

Maths:

* Bernoulli: :math:`-[x \log p + (1-x) \log(1-p)]` (the BCE of PyTorch).
* Gaussian: :math:`\tfrac12 ((x-\mu)/\sigma)^2 + \log\sigma + \tfrac12\log 2\pi`.
* Laplace with scale 1: :math:`|x - \mu| + \log 2` (an L1 reconstruction loss).
* Multinomial over the data dims (Mult-VAE, Liang et al. 2018): :math:`-\sum_i x_i \log
  \operatorname{softmax}(o)_i`, up to the multinomial coefficient, which does not depend on
  the decoder; per element, :math:`-x_i \log \operatorname{softmax}(o)_i`.
* Continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): BCE minus
  :math:`\log C(\lambda)` with :math:`C(\lambda) = \eta / \tanh(\eta/2)` where
  :math:`\eta = \operatorname{logit}\lambda` (equal to
  :math:`2\,\operatorname{artanh}(1-2\lambda)/(1-2\lambda)`, and 2 at
  :math:`\lambda = 1/2`).
"""

from __future__ import annotations

import math
from typing import Literal, get_args, overload

import torch
from torch import Tensor

from vaeloss.objective.fused import bernoulli_logits_nll
from vaeloss.validation import (
    check_choice,
    check_positive,
    check_probabilities,
    check_same_shape,
    check_tensor,
)

__all__ = [
    "DECODER_OUTPUTS",
    "LIKELIHOODS",
    "LOG_2PI",
    "DecoderOutput",
    "Likelihood",
    "bernoulli_nll",
    "bernoulli_nll_logits",
    "continuous_bernoulli_log_norm",
    "continuous_bernoulli_nll",
    "continuous_bernoulli_nll_logits",
    "decoder_mean",
    "default_decoder_output",
    "laplace_nll",
    "multinomial_nll",
    "multinomial_nll_logits",
    "element_nll",
    "gaussian_nll",
    "gaussian_nll_from_sq",
    "ml_variance",
    "optimal_sigma",
]

Likelihood = Literal["bernoulli", "gaussian", "continuous_bernoulli", "laplace", "multinomial"]
DecoderOutput = Literal["probabilities", "logits", "mean"]
LIKELIHOODS: tuple[Likelihood, ...] = get_args(Likelihood)
DECODER_OUTPUTS: tuple[DecoderOutput, ...] = get_args(DecoderOutput)
ALLOWED_OUTPUTS: dict[Likelihood, tuple[DecoderOutput, ...]] = {
    "bernoulli": ("probabilities", "logits"),
    "continuous_bernoulli": ("probabilities", "logits"),
    "gaussian": ("mean", "logits"),  # logits: a Gaussian whose mean is sigmoid(output)
    "laplace": ("mean",),
    "multinomial": ("logits", "probabilities"),  # over the data dims
}
"""What a decoder may emit for each likelihood."""


def default_decoder_output(likelihood: Likelihood) -> DecoderOutput:
    """What the built-in models' decoders emit: a mean for Gaussian and Laplace, else logits.

    >>> default_decoder_output("gaussian"), default_decoder_output("bernoulli")
    ('mean', 'logits')
    """
    return "mean" if likelihood in ("gaussian", "laplace") else "logits"


SigmaSpec = float | Tensor | Literal["optimal"]

LOG_2PI = math.log(2 * math.pi)
LOG_2 = math.log(2.0)


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
    return _bernoulli_probs(probs, target)


def _bernoulli_probs(probs: Tensor, target: Tensor) -> Tensor:
    """``F.binary_cross_entropy``'s formula (each log clamped at -100), without its range
    check: a diverging model's NaN output gives a NaN NLL, which the trainer reports as a
    divergence, instead of an exception that would end the whole sweep."""
    return -(target * probs.log().clamp_min(-100) + (1 - target) * torch.log1p(-probs).clamp_min(-100))


def bernoulli_nll_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Bernoulli NLL from decoder logits (numerically stable for any logit).

    Args:
        logits: decoder output before the sigmoid, shape [B, *D].
        target: data in [0, 1], shape [B, *D].

    Returns:
        NLL per element, shape [B, *D], nats (the fused kernel of
        :mod:`vaeloss.objective.fused`).

    >>> bernoulli_nll_logits(torch.tensor([[0.0]]), torch.tensor([[0.0]]))
    tensor([[0.6931]])
    """
    _pair(logits, target, "logits")
    check_probabilities("target", target)
    return bernoulli_logits_nll(logits, target)


@overload
def gaussian_nll_from_sq(sq: Tensor, log_var: Tensor | float, *, count: int = 1) -> Tensor: ...
@overload
def gaussian_nll_from_sq(sq: float, log_var: Tensor, *, count: int = 1) -> Tensor: ...
@overload
def gaussian_nll_from_sq(sq: float, log_var: float, *, count: int = 1) -> float: ...
def gaussian_nll_from_sq(sq: Tensor | float, log_var: Tensor | float, *, count: int = 1) -> Tensor | float:
    r"""The Gaussian NLL from a squared error: the one home of the Gaussian formula.

    :math:`\tfrac12\big(\lVert x - \mu\rVert^2/\sigma^2 + n(\log\sigma^2 + \log 2\pi)\big)`
    for ``sq`` the squared error summed over ``count`` = n elements that share the variance.

    Args:
        sq: squared error, any shape (summed over ``count`` elements, or per element).
        log_var: log of the decoder variance sigma^2, broadcastable to ``sq``.
        count: number of elements summed into each entry of ``sq``.

    Returns:
        NLL of the shape of ``sq``, nats (a float for float inputs).

    >>> round(gaussian_nll_from_sq(0.0, 0.0), 4)
    0.9189
    """
    inv_var = torch.exp(-log_var) if isinstance(log_var, Tensor) else math.exp(-log_var)
    return 0.5 * (sq * inv_var + count * (log_var + LOG_2PI))


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
        else:
            check_positive("sigma", sigma)
    return _gaussian(mean, target, _log_var(mean, sigma, log_sigma))


def _gaussian(mean: Tensor, target: Tensor, log_var: Tensor | float) -> Tensor:
    return gaussian_nll_from_sq((target - mean).square(), log_var)


def ml_variance(sq_sum: Tensor, count: int, *, min_variance: float = 1e-12) -> Tensor:
    """The maximum-likelihood shared decoder variance (sigma-VAE): mean squared error.

    Args:
        sq_sum: squared error summed over ``count`` elements, any shape.
        count: number of elements summed.
        min_variance: floor that keeps the NLL finite for perfect reconstructions.

    Returns:
        ``sq_sum / count`` floored at ``min_variance``, shape of ``sq_sum`` (data units squared).

    >>> ml_variance(torch.tensor(8.0), 4)
    tensor(2.)
    """
    return (sq_sum / count).clamp_min(min_variance)


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
    sq = (target - mean).square().sum()
    return ml_variance(sq, target.numel(), min_variance=min_sigma**2).sqrt()


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
    return _continuous_bernoulli(logits, target)


def _continuous_bernoulli(logits: Tensor, target: Tensor) -> Tensor:
    return bernoulli_logits_nll(logits, target) - continuous_bernoulli_log_norm(logits)


def _probs_to_logits(probs: Tensor) -> Tensor:
    eps = torch.finfo(probs.dtype).eps
    clamped = probs.clamp(eps, 1 - eps)
    return torch.log(clamped) - torch.log1p(-clamped)


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
    return continuous_bernoulli_nll_logits(_probs_to_logits(probs), target)


def laplace_nll(mean: Tensor, target: Tensor) -> Tensor:
    """Laplace NLL with scale 1: ``|target - mean| + log 2`` (an L1 loss is a multiple of it).

    Args:
        mean: decoder location, shape [B, *D]; target: data, shape [B, *D].

    Returns:
        NLL per element, shape [B, *D], nats.

    >>> laplace_nll(torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    tensor([[1.6931]])
    """
    _pair(mean, target, "mean")
    return _laplace(mean, target)


def _laplace(mean: Tensor, target: Tensor) -> Tensor:
    return (target - mean).abs() + LOG_2


def multinomial_nll_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Multinomial NLL over the data dims from logits (Mult-VAE): ``-x_i log softmax(o)_i``.

    Args:
        logits: decoder output, shape [B, *D]; the softmax is over all data dims of a sample.
        target: counts (or any non-negative weights), shape [B, *D].

    Returns:
        NLL per element, shape [B, *D], nats; summed over the data dims it is the multinomial
        NLL up to the multinomial coefficient (which does not depend on the decoder).

    >>> multinomial_nll_logits(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    tensor([[0.6931, 0.0000]])
    """
    _pair(logits, target, "logits")
    return _multinomial_logits(logits, target)


def _multinomial_logits(logits: Tensor, target: Tensor) -> Tensor:
    flat = logits.reshape(*logits.shape[:-1], -1) if logits.dim() < 2 else logits.flatten(1)
    log_p = torch.log_softmax(flat, dim=-1).reshape(logits.shape)
    return -target * log_p


def multinomial_nll(probs: Tensor, target: Tensor) -> Tensor:
    """Multinomial NLL over the data dims from probabilities: ``-x_i log p_i`` (log clamped at
    -100, as binary cross-entropy does).

    >>> multinomial_nll(torch.tensor([[0.5, 0.5]]), torch.tensor([[2.0, 0.0]]))
    tensor([[1.3863, 0.0000]])
    """
    _pair(probs, target, "probs")
    check_probabilities("probs", probs)
    return _multinomial_probs(probs, target)


def _multinomial_probs(probs: Tensor, target: Tensor) -> Tensor:
    return -target * torch.log(probs).clamp_min(-100)


def _log_var(recon: Tensor, sigma: float | Tensor, log_sigma: Tensor | None) -> Tensor | float:
    if log_sigma is not None:
        return 2 * log_sigma
    if isinstance(sigma, Tensor):
        return 2 * torch.log(sigma.to(recon.dtype))
    return 2 * math.log(sigma)


# unchecked kernels (the trainer's hot path) and their checked public versions, by
# (likelihood, decoder output)
_KERNELS = {
    ("bernoulli", "probabilities"): _bernoulli_probs,
    ("bernoulli", "logits"): bernoulli_logits_nll,
    ("continuous_bernoulli", "probabilities"): lambda r, x: _continuous_bernoulli(_probs_to_logits(r), x),
    ("continuous_bernoulli", "logits"): _continuous_bernoulli,
    ("laplace", "mean"): _laplace,
    ("multinomial", "logits"): _multinomial_logits,
    ("multinomial", "probabilities"): _multinomial_probs,
}
_CHECKED = {
    ("bernoulli", "probabilities"): bernoulli_nll,
    ("bernoulli", "logits"): bernoulli_nll_logits,
    ("continuous_bernoulli", "probabilities"): continuous_bernoulli_nll,
    ("continuous_bernoulli", "logits"): continuous_bernoulli_nll_logits,
    ("laplace", "mean"): laplace_nll,
    ("multinomial", "logits"): multinomial_nll_logits,
    ("multinomial", "probabilities"): multinomial_nll,
}


def element_nll(
    recon: Tensor,
    target: Tensor,
    *,
    likelihood: Likelihood = "bernoulli",
    decoder_output: DecoderOutput = "probabilities",
    sigma: SigmaSpec = 1.0,
    log_sigma: Tensor | None = None,
    validate: bool = True,
) -> Tensor:
    """Element-wise decoder NLL for a likelihood and decoder-output kind: the one dispatch.

    Args:
        recon: decoder output, shape [B, *D]: probabilities, logits or Gaussian mean.
        target: data, shape [B, *D] (broadcastable to ``recon`` with ``validate=False``).
        likelihood: "bernoulli" | "gaussian" | "continuous_bernoulli" | "laplace" | "multinomial".
        decoder_output: one of :data:`ALLOWED_OUTPUTS` for the likelihood: "probabilities" or
            "logits" (Bernoulli kinds, multinomial), "mean" (Gaussian, Laplace), "logits" for a
            Gaussian whose mean is the sigmoid of the output.
        sigma: Gaussian decoder std (float, tensor, or "optimal" for the ML shared sigma).
        log_sigma: learned Gaussian log-std; overrides ``sigma``.
        validate: check shapes, ranges and options (``False`` in the trainer's hot path).

    Returns:
        NLL per element, shape [B, *D], nats.

    >>> zero = torch.zeros(1, 1)
    >>> element_nll(zero, zero, likelihood="gaussian", decoder_output="mean")
    tensor([[0.9189]])
    """
    if validate:
        check_choice("likelihood", likelihood, LIKELIHOODS)
        check_choice("decoder_output", decoder_output, ALLOWED_OUTPUTS[likelihood])
    if likelihood == "gaussian":
        if decoder_output == "logits":
            recon = torch.sigmoid(recon)
        if isinstance(sigma, str):
            check_choice("sigma", sigma, ("optimal",))
            sigma = optimal_sigma(recon, target)
        if validate:
            return gaussian_nll(recon, target, sigma=sigma, log_sigma=log_sigma)
        return _gaussian(recon, target, _log_var(recon, sigma, log_sigma))
    table = _CHECKED if validate else _KERNELS
    return table[(likelihood, decoder_output)](recon, target)


def decoder_mean(out: Tensor, decoder_output: DecoderOutput, likelihood: Likelihood = "bernoulli") -> Tensor:
    """The decoder's output in data space: the sigmoid of logits (the softmax over the last
    dim for a multinomial), else unchanged.

    For the continuous Bernoulli the mean of the distribution differs from lambda; lambda is
    returned, as is usual for pictures.

    >>> decoder_mean(torch.tensor([0.0]), "logits")
    tensor([0.5000])
    """
    if decoder_output != "logits":
        return out
    return torch.softmax(out, dim=-1) if likelihood == "multinomial" else torch.sigmoid(out)
