"""Calibration of the decoder variance for squared-error losses (sigma-VAE, Rybkin et al. 2021).

For a Gaussian decoder, beta and the decoder variance are one knob: Gaussian(sigma^2, beta)
is Gaussian(1, beta * sigma^2) up to a constant. The audit trains one model with the
maximum-likelihood shared variance, refines it with that sigma fixed, and recommends
beta = sigma^2_ML relative to a unit-variance decoder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from vaeloss.engine.data import Dataset
from vaeloss.engine.models import BatchedVAE, build_model
from vaeloss.engine.trainer import TrainConfig, train
from vaeloss.objective.kl import reparameterise
from vaeloss.objective.likelihoods import ml_variance

__all__ = ["calibrate_sigma", "reconstruction_variance"]


@torch.no_grad()
def reconstruction_variance(model: BatchedVAE, ds: Dataset, *, samples: int = 8) -> float:
    """The ML shared decoder variance of model 0 on the training data (mean squared error of
    reconstructions from ``samples`` posterior samples), in data units squared."""
    device = next(model.parameters()).device
    x = ds.x_train.to(device)
    mu, logvar = model.encode(x)
    g = torch.Generator(device=device).manual_seed(0)
    sq = torch.zeros((), device=device)
    for _ in range(samples):
        z = reparameterise(mu, logvar, torch.randn(mu.shape, generator=g, device=device))
        sq += (model.decode(z)[0] - x).square().sum()
    return float(ml_variance(sq, samples * x.numel()))


def calibrate_sigma(
    ds: Dataset,
    model_kind: str,
    hidden: tuple[int, ...],
    k: int,
    cfg: TrainConfig,
    seed: int,
    rounds: int = 3,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[float, list[float]] | None:
    """Train with the ML shared variance, then refine with that sigma fixed, ``rounds`` times.

    Returns:
        The final ML decoder variance and the iterates; None when ``should_stop`` cut the
        training short.
    """
    model = build_model(
        model_kind, data_dim=ds.dim, shape=ds.shape, hidden=hidden, latent_dim=k, n_models=1, seeds=[seed]
    )
    base = replace(cfg, betas=[1.0], model_seeds=[seed], loss_scale=1.0, progress=False)
    if train(model, ds, replace(base, optimal_sigma=True), should_stop=should_stop).interrupted:
        return None
    trace = [reconstruction_variance(model, ds)]
    for _ in range(rounds - 1):
        epochs = max(1, cfg.epochs // 3)
        cfg_r = replace(base, sigma=math.sqrt(trace[-1]), epochs=epochs)
        if train(model, ds, cfg_r, should_stop=should_stop).interrupted:
            return None
        trace.append(reconstruction_variance(model, ds))
    return trace[-1], trace
