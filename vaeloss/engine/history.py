"""The epoch history of a training run: one row per (epoch, model) of held-out measurements.

Columns: ``epoch``, ``step``, ``model``, ``beta``, ``train_recon``, ``train_kl`` (means over
the epoch's steps), ``val_recon``, ``val_kl``, ``val_loss`` (the model's objective at KL
weight 1, nats per sample), ``lr``, ``active_units`` and ``kl_0`` ... ``kl_{k-1}`` (KL per
latent dim on the held-out rows).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vaeloss.engine.config import TrainConfig
from vaeloss.engine.loss import objective, terms
from vaeloss.engine.models import BatchedVAE, model_seeds
from vaeloss.metrics import ACTIVE_THRESHOLD

__all__ = ["epoch_rows"]


@torch.no_grad()
def epoch_rows(
    model: BatchedVAE,
    x_val: Tensor,
    train_means: Tensor,
    epoch: int,
    step: int,
    cfg: TrainConfig,
    analytic: bool,
    lr: Tensor,
) -> list[dict[str, Any]]:
    """The history rows of one epoch, one per model, measured on ``x_val`` [N, D].

    ``train_means`` [S, 2] holds each model's mean training reconstruction and KL over the
    epoch. The validation loss uses one reparameterised sample per row from a fixed per-model
    generator, the same in every epoch: it is the training loss's estimator, deterministic,
    comparable across epochs (common random numbers), and model s of a batch sees the noise it
    would see alone.
    """
    seeds = model_seeds(model.n_models, cfg.model_seeds)
    eps = None
    if not analytic:
        gens = [torch.Generator(device=x_val.device).manual_seed(cfg.seed * 7919 + s) for s in seeds]
        eps = torch.stack(
            [torch.randn(x_val.shape[0], model.latent_dim, generator=g, device=x_val.device) for g in gens]
        )
    recon, kl_dims, mu = terms(model, x_val, eps, cfg, analytic)
    betas = torch.tensor([float(b) for b in cfg.betas], device=recon.device)
    val_loss = objective(recon, kl_dims, betas, 1.0, cfg)
    au_var = mu.var(dim=1, unbiased=False) if mu.shape[1] > 1 else torch.zeros_like(mu[:, 0])
    rows = []
    for s in range(model.n_models):
        row: dict[str, Any] = {
            "epoch": epoch,
            "step": step,
            "model": s,
            "beta": float(cfg.betas[s]),
            "train_recon": float(train_means[s, 0]),
            "train_kl": float(train_means[s, 1]),
            "val_recon": float(recon[s]),
            "val_kl": float(kl_dims[s].sum()),
            "val_loss": float(val_loss[s]),
            "lr": float(lr[s]),
            "active_units": int((au_var[s] > ACTIVE_THRESHOLD).sum()),
        }
        for j, v in enumerate(kl_dims[s].tolist()):
            row[f"kl_{j}"] = v
        rows.append(row)
    return rows
