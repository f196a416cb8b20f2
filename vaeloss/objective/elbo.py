r"""Reference negative ELBO in nats, with every reduction explicit.

For one sample :math:`x` with :math:`D` data elements and :math:`k` latent dims,

.. math::

    -\mathrm{ELBO}_\beta(x) = \sum_{i=1}^{D} \mathrm{NLL}_i + \beta \sum_{j=1}^{k} \mathrm{KL}_j .

``data_reduction="mean"`` divides the first sum by D, ``latent_reduction="mean"`` the
second by k; ``batch_reduction`` then takes the mean or the sum over the B samples, or
returns the per-sample vector. The per-sample terms are always returned as well.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from torch import Tensor

from vaeloss.errors import ShapeMismatchError
from vaeloss.objective.kl import LatentParameterisation, kl_normal
from vaeloss.objective.likelihoods import DecoderOutput, Likelihood, SigmaSpec, element_nll
from vaeloss.validation import (
    check_choice,
    check_nonnegative,
    check_tensor,
)

__all__ = ["BatchReduction", "ElboTerms", "Reduction", "negative_elbo", "reduce_terms"]

Reduction = Literal["sum", "mean"]
BatchReduction = Literal["mean", "sum", "none"]


class ElboTerms(NamedTuple):
    """The negative ELBO and its parts.

    Attributes:
        loss: the reduced total: scalar for batch_reduction "mean"/"sum", [B] for "none".
        recon: reconstruction NLL per sample, shape [B], nats (reduced over data dims).
        kl: KL per sample, shape [B], nats (reduced over latent dims, *not* multiplied by beta).
    """

    loss: Tensor
    recon: Tensor
    kl: Tensor


def reduce_terms(
    nll: Tensor,
    kl: Tensor,
    *,
    beta: float = 1.0,
    data_reduction: Reduction = "sum",
    latent_reduction: Reduction = "sum",
    batch_reduction: BatchReduction = "mean",
) -> ElboTerms:
    """Reduce element-wise NLL [B, *D] and KL [B, k] into the negative ELBO.

    Args:
        nll: NLL per data element, shape [B, *D], nats.
        kl: KL per latent dim, shape [B, k], nats.
        beta: weight of the KL term, >= 0.
        data_reduction: "sum" | "mean" over the data dims.
        latent_reduction: "sum" | "mean" over the latent dims.
        batch_reduction: "mean" | "sum" | "none" over the batch.

    Returns:
        :class:`ElboTerms`.

    >>> reduce_terms(torch.ones(2, 3), torch.ones(2, 4), batch_reduction="sum").loss
    tensor(14.)
    """
    beta = check_nonnegative("beta", beta)
    check_choice("data_reduction", data_reduction, ("sum", "mean"))
    check_choice("latent_reduction", latent_reduction, ("sum", "mean"))
    check_choice("batch_reduction", batch_reduction, ("mean", "sum", "none"))
    check_tensor("nll", nll)
    check_tensor("kl", kl, min_dim=2)
    if nll.shape[0] != kl.shape[0]:
        raise ShapeMismatchError(
            f"Expected the same batch size for the data and the latents but got "
            f"recon.shape[0]={nll.shape[0]}, mu.shape[0]={kl.shape[0]}. Try passing the "
            f"posterior parameters of the same batch."
        )
    flat = nll.reshape(nll.shape[0], -1)
    recon = flat.sum(1) if data_reduction == "sum" else flat.mean(1)
    kl_s = kl.sum(1) if latent_reduction == "sum" else kl.mean(1)
    per_sample = recon + beta * kl_s
    if batch_reduction == "mean":
        loss = per_sample.mean()
    elif batch_reduction == "sum":
        loss = per_sample.sum()
    else:
        loss = per_sample
    return ElboTerms(loss, recon, kl_s)


def negative_elbo(
    recon: Tensor,
    target: Tensor,
    mu: Tensor,
    scale: Tensor,
    *,
    likelihood: Likelihood = "bernoulli",
    decoder_output: DecoderOutput = "probabilities",
    latent_parameterisation: LatentParameterisation = "logvar",
    sigma: SigmaSpec = 1.0,
    log_sigma: Tensor | None = None,
    beta: float = 1.0,
    data_reduction: Reduction = "sum",
    latent_reduction: Reduction = "sum",
    batch_reduction: BatchReduction = "mean",
) -> ElboTerms:
    """The negative (beta-)ELBO with the analytic Gaussian KL, in nats.

    Args:
        recon: decoder output, shape [B, *D] (probabilities, logits or Gaussian mean).
        target: data, shape [B, *D].
        mu: posterior means, shape [B, k].
        scale: posterior scale in ``latent_parameterisation``, shape [B, k].
        likelihood: "bernoulli" | "gaussian" | "continuous_bernoulli".
        decoder_output: "probabilities" | "logits" | "mean".
        latent_parameterisation: "logvar" | "log_std" | "std" | "var".
        sigma: Gaussian decoder std, or "optimal".
        log_sigma: learned Gaussian decoder log-std.
        beta: KL weight (>= 0).
        data_reduction: "sum" | "mean" over data dims.
        latent_reduction: "sum" | "mean" over latent dims.
        batch_reduction: "mean" | "sum" | "none".

    Returns:
        :class:`ElboTerms` (``loss`` reduced; ``recon`` and ``kl`` per sample, [B]).

    >>> x = torch.tensor([[1.0, 0.0]])
    >>> terms = negative_elbo(torch.full((1, 2), 0.5), x, torch.zeros(1, 3), torch.zeros(1, 3))
    >>> round(terms.loss.item(), 4)
    1.3863
    """
    nll = element_nll(
        recon,
        target,
        likelihood=likelihood,
        decoder_output=decoder_output,
        sigma=sigma,
        log_sigma=log_sigma,
    )
    kl = kl_normal(mu, scale, parameterisation=latent_parameterisation)
    return reduce_terms(
        nll,
        kl,
        beta=beta,
        data_reduction=data_reduction,
        latent_reduction=latent_reduction,
        batch_reduction=batch_reduction,
    )
