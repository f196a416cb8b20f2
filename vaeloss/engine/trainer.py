r"""Training of S batched VAEs that differ only in beta (and seed), as one model.

Each model s minimises, per step, its per-sample negative ELBO (batch mean)

.. math::  \ell_s = c_s\,\big(\overline{\textstyle\sum_d \mathrm{NLL}} + w(t)\,\beta_s\,\mathrm{KL}_{fb}\big)

with :math:`c_s` the gradient scale of the convention audited, :math:`w(t)` the KL schedule
and :math:`\mathrm{KL}_{fb} = \sum_j \max(\lambda, \overline{\mathrm{KL}_j})` (free bits
:math:`\lambda`, 0 by default). The sum over s is minimised with one Adam; Adam is
element-wise, so the models do not interact: the sweep equals S separate runs. The loss is
defined once (:func:`_terms` and :func:`_step_loss`) and differentiated by autograd.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from vaeloss.engine.data import Dataset
from vaeloss.engine.models import BatchedLinearVAE, BatchedVAE
from vaeloss.errors import DeviceError, InvalidArgumentError
from vaeloss.metrics import ACTIVE_THRESHOLD
from vaeloss.objective.kl import kl_normal, reparameterise
from vaeloss.objective.likelihoods import (
    ALLOWED_OUTPUTS,
    LIKELIHOODS,
    DecoderOutput,
    Likelihood,
    default_decoder_output,
    element_nll,
    gaussian_nll_from_sq,
    ml_variance,
)
from vaeloss.validation import check_choice, check_nonnegative, check_positive, check_positive_int

__all__ = ["TrainConfig", "TrainResult", "kl_weight_schedule", "resolve_device", "train"]

Schedule = Literal["constant", "linear", "cyclical"]


@dataclass
class TrainConfig:
    """Options of :func:`train` (betas in ELBO units, one per model).

    ``bf16=True`` runs the forward pass under bfloat16 autocast (for GPUs with fast bf16;
    the losses and the optimiser stay in float32). ``compile=True`` compiles the forward and
    loss with ``torch.compile`` (for long GPU runs; on a 2-core CPU it costs about 25 s once and
    gained nothing measurable in ``bench/train_speed.py``). ``optimal_sigma`` uses the ML shared
    decoder variance of each batch (sigma-VAE) instead of ``sigma``. ``decoder_output`` says
    what the model's decoder emits: logits (the built-in models' Bernoulli kinds),
    probabilities, or a mean (Gaussian); None picks logits or mean from the likelihood.
    """

    betas: Sequence[float] = (1.0,)
    likelihood: Likelihood = "bernoulli"
    decoder_output: DecoderOutput | None = None
    sigma: float = 1.0
    optimal_sigma: bool = False
    loss_scale: float = 1.0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    schedule: Schedule = "constant"
    warmup_fraction: float = 0.25
    cycles: int = 4
    free_bits: float = 0.0
    seed: int = 0
    model_seeds: Sequence[int] | None = None
    device: str = "auto"
    analytic: bool | None = None
    progress: bool | None = None
    full_batch: bool = False
    cosine_lr: bool = False
    bf16: bool = False
    compile: bool = False

    @property
    def output_kind(self) -> DecoderOutput:
        """What the decoder emits (``decoder_output``, or the default for the likelihood)."""
        return self.decoder_output or default_decoder_output(self.likelihood)

    def validate(self) -> None:
        if not self.betas:
            raise InvalidArgumentError("Expected at least one beta but got betas=[]. Try betas=[1.0].")
        for b in self.betas:
            check_nonnegative("beta", b)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_choice("decoder_output", self.output_kind, ALLOWED_OUTPUTS[self.likelihood])
        check_choice("schedule", self.schedule, ("constant", "linear", "cyclical"))
        check_positive("sigma", self.sigma)
        check_positive("loss_scale", self.loss_scale)
        check_positive("lr", self.lr)
        check_positive_int("epochs", self.epochs, example=20)
        check_positive_int("batch_size", self.batch_size, example=128)
        check_nonnegative("free_bits", self.free_bits)


@dataclass
class TrainResult:
    """What training produced.

    Attributes:
        model: the trained batched model (on its device).
        history: one row per (epoch, model): train/val reconstruction and KL (nats per
            sample), KL per latent dim, active units.
        stopped: per model, None or ``{"step", "epoch", "term"}`` where the loss went non-finite.
        interrupted: training was cut short (Ctrl-C, or ``should_stop`` said so).
        steps: optimiser steps taken; seconds: wall time.
        epochs_run: epochs completed (with a validation row in ``history``).
    """

    model: BatchedVAE
    history: pd.DataFrame
    stopped: list[dict[str, Any] | None]
    interrupted: bool = False
    steps: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    config: TrainConfig = field(default_factory=TrainConfig)
    epochs_run: int = 0


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without CUDA is an error."""
    check_choice("device", device, ("auto", "cpu", "cuda"))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "Expected a CUDA GPU for device='cuda' but torch.cuda.is_available() is "
            "False. Try --device cpu (or auto)."
        )
    return torch.device(device)


def _model_seeds(cfg: TrainConfig, n_models: int) -> list[int]:
    """The seed of each model (0 for all when ``cfg.model_seeds`` is not given)."""
    return list(cfg.model_seeds) if cfg.model_seeds is not None else [0] * n_models


def kl_weight_schedule(
    step: int,
    total: int,
    *,
    schedule: Schedule = "constant",
    warmup_fraction: float = 0.25,
    cycles: int = 4,
    ratio: float = 0.5,
) -> float:
    """KL weight w(t) in [0, 1]: constant 1, linear warm-up, or cyclical (Fu et al. 2019).

    >>> [kl_weight_schedule(t, 8, schedule="cyclical", cycles=2) for t in range(8)]
    [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    """
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        span = max(1.0, warmup_fraction * total)
        return min(1.0, step / span)
    period = max(1.0, total / cycles)
    tau = (step % period) / period
    return min(1.0, tau / ratio)


def _terms(
    model: BatchedVAE, x: Tensor, eps: Tensor | None, cfg: TrainConfig, analytic: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The training loss's terms, per model: mean reconstruction NLL [S] and mean KL per latent
    dim [S, k] (nats, means over the batch), and the posterior means mu [S, N, k].
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


def _step_loss(recon: Tensor, kl_dims: Tensor, betas: Tensor, w: float, cfg: TrainConfig) -> Tensor:
    """Per model [S]: ``loss_scale * (recon + w * beta * sum_j max(free_bits, KL_j))``."""
    kl = (kl_dims.clamp_min(cfg.free_bits) if cfg.free_bits > 0 else kl_dims).sum(-1)
    return cfg.loss_scale * (recon + w * betas * kl)


def train(
    model: BatchedVAE,
    data: Dataset,
    config: TrainConfig,
    on_epoch: Callable[[pd.DataFrame], None] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train the S models of ``model`` on ``data``, one beta each. See the module docstring.

    Deterministic on the CPU for a given ``config.seed`` and ``config.model_seeds``.
    ``should_stop`` is asked before every step; when it says so (a signal arrived), training
    ends there and the result is marked interrupted, as it is on Ctrl-C (KeyboardInterrupt).
    """
    cfg = config
    cfg.validate()
    S = model.n_models
    if len(cfg.betas) != S:
        raise InvalidArgumentError(f"Expected one beta per model ({S}) but got betas={list(cfg.betas)}.")
    device = resolve_device(cfg.device)
    model.to(device)
    x_train, x_val = data.x_train.to(device), data.x_val.to(device)
    n = x_train.shape[0]
    bs = n if cfg.full_batch else min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // bs)
    total = steps_per_epoch * cfg.epochs
    analytic = (
        cfg.analytic
        if cfg.analytic is not None
        else isinstance(model, BatchedLinearVAE) and cfg.likelihood == "gaussian"
    )
    betas = torch.tensor([float(b) for b in cfg.betas], device=device)
    terms_fn = torch.compile(_terms, dynamic=False) if cfg.compile else _terms
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total) if cfg.cosine_lr else None
    data_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    mseeds = _model_seeds(cfg, S)
    noise_gens = [torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + s) for s in mseeds]
    k = model.latent_dim
    alive = [True] * S
    stopped: list[dict[str, Any] | None] = [None] * S
    frozen: dict[int, list[Tensor]] = {}
    rows: list[dict[str, Any]] = []
    show = sys.stderr.isatty() if cfg.progress is None else cfg.progress
    bar = tqdm(total=total, disable=not show, unit="step", leave=False, file=sys.stderr)
    step, interrupted, t0, epochs_run = 0, False, time.perf_counter(), 0
    try:
        for epoch in range(1, cfg.epochs + 1):
            bar.set_description(f"epoch {epoch}/{cfg.epochs}")
            sums = torch.zeros(S, 2, device=device)
            perm = torch.randperm(n, generator=data_gen, device=device)
            for i in range(steps_per_epoch):
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                xb = x_train[perm[i * bs : (i + 1) * bs]]
                if data.binarization == "dynamic":
                    xb = torch.bernoulli(xb, generator=data_gen)
                eps = (
                    None
                    if analytic
                    else torch.stack(
                        [torch.randn(xb.shape[0], k, generator=g, device=device) for g in noise_gens]
                    )
                )
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    recon, kl_dims, _ = terms_fn(model, xb, eps, cfg, analytic)
                recon, kl_dims = recon.float(), kl_dims.float()
                w = kl_weight_schedule(
                    step,
                    total,
                    schedule=cfg.schedule,
                    warmup_fraction=cfg.warmup_fraction,
                    cycles=cfg.cycles,
                )
                per_model = _step_loss(recon, kl_dims, betas, w, cfg)
                bad = ~torch.isfinite(per_model)
                if bool(bad.any()):
                    for s in torch.nonzero(bad).flatten().tolist():
                        if alive[s]:
                            alive[s] = False
                            # a KL overflow (logvar blowing up) also ruins the sample: report it first
                            term = "KL" if not bool(torch.isfinite(kl_dims[s]).all()) else "reconstruction"
                            stopped[s] = {"step": step, "epoch": epoch, "term": term}
                            frozen[s] = [p.detach()[s].clone() for p in model.parameters()]
                    if not any(alive):
                        raise StopIteration
                    per_model = torch.where(bad, torch.zeros_like(per_model), per_model)
                opt.zero_grad(set_to_none=True)
                per_model.sum().backward()
                if frozen:
                    for p in model.parameters():
                        if p.grad is not None:
                            p.grad.nan_to_num_(0.0, 0.0, 0.0)
                opt.step()
                if sched is not None:
                    sched.step()
                for s, saved in frozen.items():
                    with torch.no_grad():
                        for p, v in zip(model.parameters(), saved):
                            p[s] = v
                sums += torch.stack([recon.detach(), kl_dims.detach().sum(-1)], dim=1)
                step += 1
                bar.update()
            rows.extend(_epoch_rows(model, x_val, sums / steps_per_epoch, epoch, step, cfg, analytic))
            epochs_run = epoch
            if on_epoch is not None:
                on_epoch(pd.DataFrame(rows))
    except StopIteration:
        pass
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    history = pd.DataFrame(rows)
    seconds = time.perf_counter() - t0
    return TrainResult(model, history, stopped, interrupted, step, seconds, str(device), cfg, epochs_run)


@torch.no_grad()
def _epoch_rows(
    model: BatchedVAE,
    x_val: Tensor,
    train_means: Tensor,
    epoch: int,
    step: int,
    cfg: TrainConfig,
    analytic: bool,
) -> list[dict[str, Any]]:
    # one reparameterised sample per point from a fixed per-model generator: the validation
    # reconstruction is the same estimator as the training one, deterministic, and model s of
    # a batch sees the noise it would see alone
    seeds = _model_seeds(cfg, model.n_models)
    eps = None
    if not analytic:
        gens = [
            torch.Generator(device=x_val.device).manual_seed(cfg.seed * 7919 + epoch * 104729 + s)
            for s in seeds
        ]
        eps = torch.stack(
            [torch.randn(x_val.shape[0], model.latent_dim, generator=g, device=x_val.device) for g in gens]
        )
    recon, kl_dims, mu = _terms(model, x_val, eps, cfg, analytic)
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
            "active_units": int((au_var[s] > ACTIVE_THRESHOLD).sum()),
        }
        for j, v in enumerate(kl_dims[s].tolist()):
            row[f"kl_{j}"] = v
        rows.append(row)
    return rows
