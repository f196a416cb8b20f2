"""Calibration of the decoder variance for squared-error losses (sigma-VAE, Rybkin et al. 2021).

For a Gaussian decoder, beta and the decoder variance are one knob: Gaussian(sigma^2, beta)
is Gaussian(1, beta * sigma^2) up to a constant. The audit trains one model with the
maximum-likelihood shared variance, refines it with that sigma fixed, and recommends
beta = sigma^2_ML relative to a unit-variance decoder.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from vaeloss.audit.verdict import too_early_reason
from vaeloss.engine.data import Dataset
from vaeloss.engine.models import BatchedVAE
from vaeloss.engine.trainer import TrainConfig, train
from vaeloss.objective.kl import reparameterise
from vaeloss.objective.likelihoods import ml_variance

__all__ = ["Calibration", "calibrate_sigma", "reconstruction_variance"]


@torch.no_grad()
def reconstruction_variance(model: BatchedVAE, ds: Dataset, *, samples: int = 2, rows: int = 512) -> float:
    """The ML shared decoder variance of model 0 on (at most ``rows`` of) the training data:
    the mean squared error of reconstructions from ``samples`` posterior samples, in data
    units squared."""
    device = next(model.parameters()).device
    model.eval()
    x = ds.x_train[:rows].to(device)
    mu, logvar = model.encode(x)
    g = torch.Generator(device=device).manual_seed(0)
    sq = torch.zeros((), device=device)
    for _ in range(samples):
        z = reparameterise(mu, logvar, torch.randn(mu.shape, generator=g, device=device))
        sq += (model.decode(z)[0] - x).square().sum()
    return float(ml_variance(sq, samples * x.numel()))


@dataclass(frozen=True)
class Calibration:
    """The calibrated decoder variance (data units squared), its iterates, whether every
    training round converged, and why a round stopped too early to tell (None: none did)."""

    variance: float
    trace: list[float]
    converged: bool
    too_early: str | None = None


def calibrate_sigma(
    ds: Dataset,
    model: BatchedVAE,
    cfg: TrainConfig,
    *,
    rounds: int = 2,
    should_stop: Callable[[], bool] | None = None,
) -> Calibration | None:
    """Train ``model`` (one model) with the ML shared variance, then refine it with that
    sigma fixed (``rounds`` trainings in all, each as ``cfg`` says: to convergence within
    its budgets; ``cfg.max_seconds`` is shared by all rounds, and a round with no time left is
    not started: the calibration is then not converged).

    Returns:
        The calibration; None when ``should_stop`` cut the training short.
    """
    base = replace(
        cfg, betas=[1.0], model_seeds=cfg.model_seeds and [cfg.model_seeds[0]], loss_scale=1.0, progress=False
    )
    t0 = time.perf_counter()

    def left() -> float | None:
        return None if cfg.max_seconds is None else max(1e-3, cfg.max_seconds - (time.perf_counter() - t0))

    first = train(model, ds, replace(base, optimal_sigma=True, max_seconds=left()), should_stop=should_stop)
    if first.interrupted:
        return None
    converged = all(st.converged for st in first.status)
    early = too_early_reason(first.status[0])
    trace = [reconstruction_variance(model, ds)]
    for _ in range(rounds - 1):
        if cfg.max_seconds is not None and time.perf_counter() - t0 >= cfg.max_seconds:
            converged = False  # no time left to refine: the first round's variance stands
            break
        cfg_r = replace(base, sigma=math.sqrt(trace[-1]), max_seconds=left())
        again = train(model, ds, cfg_r, should_stop=should_stop)
        if again.interrupted:
            return None
        converged = converged and all(st.converged for st in again.status)
        trace.append(reconstruction_variance(model, ds))
    return Calibration(trace[-1], trace, converged, early)
