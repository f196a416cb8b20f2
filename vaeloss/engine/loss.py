r"""The training loss of S batched VAEs, defined once and differentiated by autograd.

Each model s minimises, per step, its per-sample negative ELBO (batch mean)

.. math::  \ell_s = c_s\,\big(\overline{\textstyle\sum_d \mathrm{NLL}} + w(t)\,\beta_s\,\mathrm{KL}_{fb}\big)

with :math:`c_s` the gradient scale of the convention audited, :math:`w(t)` the KL schedule
and :math:`\mathrm{KL}_{fb} = \sum_j \max(\lambda, \overline{\mathrm{KL}_j})` (free bits
:math:`\lambda`, 0 by default).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaeloss.engine.config import TrainConfig
from vaeloss.engine.models import BatchedLinearVAE, BatchedVAE
from vaeloss.objective.kl import kl_normal, reparameterise
from vaeloss.objective.likelihoods import element_nll, gaussian_nll_from_sq, ml_variance

__all__ = ["objective", "step_loss", "terms"]


def terms(
    model: BatchedVAE, x: Tensor, eps: Tensor | None, cfg: TrainConfig, analytic: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The training loss's terms, per model: mean reconstruction NLL [S] and mean KL per latent
    dim [S, k] (nats, means over the batch), and the posterior means mu [S, N, k].

    ``eps`` [S, N, k] is the reparameterisation noise (None: decode the means); ``analytic``
    uses the linear VAE's closed-form expected squared error instead of a sample.
    """
    mu, logvar = model.encode(x)
    kl = kl_normal(mu, logvar).mean(-2)  # [S, k]
    if analytic:  # linear VAE, Gaussian decoder: the expected squared error in closed form
        assert isinstance(model, BatchedLinearVAE)
        sq = model.expected_sq_error(x, mu, logvar)  # [S, N]
    else:
        z = mu if eps is None else reparameterise(mu, logvar, eps)
        out = model.decode(z)
        if not cfg.optimal_sigma or cfg.likelihood != "gaussian":
            nll = element_nll(
                out,
                x,
                likelihood=cfg.likelihood,
                decoder_output=cfg.output_kind,
                sigma=cfg.sigma,
                validate=False,
            )
            return nll.sum(-1).mean(-1), kl, mu
        sq = (x - out).square().sum(-1)
    D = x.shape[-1]
    if cfg.optimal_sigma:  # sigma-VAE: each model's ML variance on this batch, held fixed
        var = ml_variance(sq.detach().sum(-1, keepdim=True), sq.shape[-1] * D, min_variance=1e-6)
        return gaussian_nll_from_sq(sq, torch.log(var), count=D).mean(-1), kl, mu
    return gaussian_nll_from_sq(sq, 2 * math.log(cfg.sigma), count=D).mean(-1), kl, mu


def objective(recon: Tensor, kl_dims: Tensor, betas: Tensor, w: float, cfg: TrainConfig) -> Tensor:
    """Per model [S], nats per sample: ``recon + w * beta * sum_j max(free_bits, KL_j)``."""
    kl = (kl_dims.clamp_min(cfg.free_bits) if cfg.free_bits > 0 else kl_dims).sum(-1)
    return recon + w * betas * kl


def step_loss(recon: Tensor, kl_dims: Tensor, betas: Tensor, w: float, cfg: TrainConfig) -> Tensor:
    """Per model [S]: the loss minimised, ``loss_scale`` times :func:`objective`."""
    return cfg.loss_scale * objective(recon, kl_dims, betas, w, cfg)
