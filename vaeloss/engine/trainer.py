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
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from vaeloss.engine.convergence import ConvergenceRule, Plateau, window_epochs
from vaeloss.engine.data import Dataset
from vaeloss.engine.models import BatchedLinearVAE, BatchedVAE, model_seeds
from vaeloss.engine.optim import BatchedAdam
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

__all__ = ["ModelStatus", "TrainConfig", "TrainResult", "kl_weight_schedule", "resolve_device", "train"]

Schedule = Literal["constant", "linear", "cyclical"]
Until = Literal["epochs", "converged"]
EndReason = Literal["converged", "epoch limit", "time limit", "interrupted", "diverged", "fixed epochs"]


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

    ``until="converged"`` trains each model until the plateau ``rule`` says it converged
    (``epochs`` and ``max_seconds`` are then budgets); ``lr_warmup_steps`` ramps the learning
    rate up linearly over the first steps.
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
    until: Until = "epochs"
    max_seconds: float | None = None
    rule: ConvergenceRule = field(default_factory=ConvergenceRule)
    lr_warmup_steps: int = 0
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
        check_choice("until", self.until, ("epochs", "converged"))
        if self.max_seconds is not None:
            check_positive("max_seconds", self.max_seconds)
        check_positive("sigma", self.sigma)
        check_positive("loss_scale", self.loss_scale)
        check_positive("lr", self.lr)
        check_positive_int("epochs", self.epochs, example=20)
        check_positive_int("batch_size", self.batch_size, example=128)
        check_nonnegative("free_bits", self.free_bits)


@dataclass(frozen=True)
class ModelStatus:
    """How one model's training ended.

    Attributes:
        converged: the plateau rule said so (see :mod:`vaeloss.engine.convergence`).
        epochs: epochs it trained; best_epoch: the epoch it was restored to (converged mode).
        last_relative: its last relative improvement over a window (None before one window).
        lr: its final learning rate (0 once converged or diverged).
        reason: "converged", "epoch limit", "time limit", "interrupted", "diverged", or
            "fixed epochs" (``until="epochs"``).
    """

    converged: bool
    epochs: int
    best_epoch: int
    last_relative: float | None
    lr: float
    reason: EndReason

    def describe(self) -> str:
        """``converged in 57 epochs`` or ``not converged (time limit after 12 epochs; last
        relative improvement 0.8%)``; the relative improvement is the last window's gain as a
        share of all the gain so far (see :mod:`vaeloss.engine.convergence`)."""
        if self.converged:
            return f"converged in {self.epochs} epochs"
        if self.reason == "diverged":
            return "diverged"
        return f"not converged ({self.why_not()})"

    def why_not(self) -> str:
        """``time limit after 12 epochs; last relative improvement 0.8%``."""
        last = "" if self.last_relative is None else f"; last relative improvement {self.last_relative:.2%}"
        return f"{self.reason} after {self.epochs} epochs{last}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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
        status: per model, how its training ended.
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
    status: list[ModelStatus] = field(default_factory=list)


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


def _objective(recon: Tensor, kl_dims: Tensor, betas: Tensor, w: float, cfg: TrainConfig) -> Tensor:
    """Per model [S], nats per sample: ``recon + w * beta * sum_j max(free_bits, KL_j)``."""
    kl = (kl_dims.clamp_min(cfg.free_bits) if cfg.free_bits > 0 else kl_dims).sum(-1)
    return recon + w * betas * kl


def _step_loss(recon: Tensor, kl_dims: Tensor, betas: Tensor, w: float, cfg: TrainConfig) -> Tensor:
    """Per model [S]: the loss minimised, ``loss_scale`` times :func:`_objective`."""
    return cfg.loss_scale * _objective(recon, kl_dims, betas, w, cfg)


def train(
    model: BatchedVAE,
    data: Dataset,
    config: TrainConfig,
    on_epoch: Callable[[pd.DataFrame], None] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train the S models of ``model`` on ``data``, one beta each. See the module docstring.

    With ``until="epochs"`` every model trains ``epochs`` epochs; with ``until="converged"``
    each trains until the plateau rule (:mod:`vaeloss.engine.convergence`) says it converged,
    within ``epochs`` epochs and ``max_seconds``, and ends at its best epoch.
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
    opt = BatchedAdam(model.parameter_models(), n_models=S, lr=cfg.lr)
    converge = cfg.until == "converged"
    window = window_epochs(cfg.rule, steps_per_epoch)
    plateaus = [Plateau(cfg.rule, window) for _ in range(S)]
    data_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    mseeds = model_seeds(S, cfg.model_seeds)
    noise_gens = [torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + s) for s in mseeds]
    k = model.latent_dim
    stopped: list[dict[str, Any] | None] = [None] * S
    pinned: dict[int, list[Tensor]] = {}  # diverged or converged models: held at these values
    best: dict[int, list[Tensor]] = {}
    rows: list[dict[str, Any]] = []

    def hold(s: int, state: list[Tensor]) -> None:
        """Freeze model s at ``state`` (restored after every step; learning rate 0)."""
        pinned[s] = state
        opt.lr[s] = 0.0

    def diverge(s: int, step: int, epoch: int, term: str) -> None:
        stopped[s] = {"step": step, "epoch": epoch, "term": term}
        hold(s, model.state_of(s))

    show = sys.stderr.isatty() if cfg.progress is None else cfg.progress
    bar = tqdm(total=total, disable=not show, unit="step", leave=False, file=sys.stderr)
    step, t0, epochs_run = 0, time.perf_counter(), 0
    ended: EndReason = "epoch limit" if converge else "fixed epochs"
    try:
        for epoch in range(1, cfg.epochs + 1):
            bar.set_description(f"epoch {epoch}/{cfg.epochs}")
            model.train()
            sums = torch.zeros(S, 2, device=device)
            perm = torch.randperm(n, generator=data_gen, device=device)
            done = 0
            for i in range(steps_per_epoch):
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                if cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds:
                    ended = "time limit"
                    break
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
                        if stopped[s] is None and s not in pinned:
                            # a KL overflow (logvar blowing up) also ruins the sample: report it first
                            term = "KL" if not bool(torch.isfinite(kl_dims[s]).all()) else "reconstruction"
                            diverge(s, step, epoch, term)
                    if len(pinned) == S:
                        raise StopIteration
                    per_model = torch.where(bad, torch.zeros_like(per_model), per_model)
                opt.zero_grad()
                per_model.sum().backward()
                if pinned:
                    for p, _ in opt.params:
                        if p.grad is not None:
                            p.grad.nan_to_num_(0.0, 0.0, 0.0)
                opt.step(scale=_lr_factor(step, total, cfg))
                for s, saved in pinned.items():
                    model.load_state_of(s, saved)
                sums += torch.stack([recon.detach(), kl_dims.detach().sum(-1)], dim=1)
                step += 1
                done += 1
                bar.update()
            if done == 0:
                break
            model.eval()
            new_rows = _epoch_rows(model, x_val, sums / done, epoch, step, cfg, analytic, opt.lr)
            rows.extend(new_rows)
            epochs_run = epoch
            for s, row in enumerate(new_rows):
                if s in pinned:
                    continue
                if not math.isfinite(row["val_loss"]):  # finite training steps, non-finite on held-out data
                    term = "reconstruction" if not math.isfinite(row["val_recon"]) else "KL"
                    diverge(s, step, epoch, term)
                    best.pop(s, None)
                    continue
                action = plateaus[s].observe(row["val_loss"])
                if not converge:
                    continue
                if plateaus[s].best_epoch == plateaus[s].epochs:  # this epoch is its best so far
                    best[s] = model.state_of(s)
                if action == "reduce":
                    opt.lr[s] *= cfg.rule.factor
                elif action == "converged":
                    model.load_state_of(s, best[s])
                    hold(s, best[s])
            if on_epoch is not None:
                on_epoch(pd.DataFrame(rows))
            if all(st is not None for st in stopped):
                raise StopIteration
            if converge and len(pinned) == S:
                ended = "converged"
                break
            if ended == "time limit":
                break
    except StopIteration:
        ended = "diverged"
    except KeyboardInterrupt:
        ended = "interrupted"
    finally:
        bar.close()
    if converge:
        for s, saved in best.items():
            if s not in pinned:
                model.load_state_of(s, saved)
    model.eval()
    status = [_status(plateaus[s], stopped[s], ended, float(opt.lr[s]), converge) for s in range(S)]
    history = pd.DataFrame(rows)
    seconds = time.perf_counter() - t0
    return TrainResult(
        model,
        history,
        stopped,
        ended == "interrupted",
        step,
        seconds,
        str(device),
        cfg,
        epochs_run,
        status,
    )


def _lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    """The learning rate's factor at ``step``: linear warm-up, then 1 (or a cosine decay)."""
    factor = min(1.0, (step + 1) / cfg.lr_warmup_steps) if cfg.lr_warmup_steps else 1.0
    if cfg.cosine_lr:
        factor *= 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    return factor


def _status(
    p: Plateau, stopped: dict[str, Any] | None, ended: EndReason, lr: float, converge: bool
) -> ModelStatus:
    if stopped is not None:
        return ModelStatus(False, p.epochs, p.best_epoch, p.last_relative, lr, "diverged")
    if not converge:  # the plateau rule only watched: nothing was decided by it
        return ModelStatus(False, p.epochs, p.best_epoch, p.last_relative, lr, ended)
    reason: EndReason = "converged" if p.converged else ("epoch limit" if ended == "converged" else ended)
    return ModelStatus(p.converged, p.epochs, p.best_epoch, p.last_relative, lr, reason)


@torch.no_grad()
def _epoch_rows(
    model: BatchedVAE,
    x_val: Tensor,
    train_means: Tensor,
    epoch: int,
    step: int,
    cfg: TrainConfig,
    analytic: bool,
    lr: Tensor,
) -> list[dict[str, Any]]:
    # one reparameterised sample per point from a fixed per-model generator, the same in every
    # epoch: the validation loss is the training one's estimator, deterministic, comparable
    # across epochs (common random numbers), and model s of a batch sees the noise it would
    # see alone
    seeds = model_seeds(model.n_models, cfg.model_seeds)
    eps = None
    if not analytic:
        gens = [torch.Generator(device=x_val.device).manual_seed(cfg.seed * 7919 + s) for s in seeds]
        eps = torch.stack(
            [torch.randn(x_val.shape[0], model.latent_dim, generator=g, device=x_val.device) for g in gens]
        )
    recon, kl_dims, mu = _terms(model, x_val, eps, cfg, analytic)
    betas = torch.tensor([float(b) for b in cfg.betas], device=recon.device)
    val_loss = _objective(recon, kl_dims, betas, 1.0, cfg)
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
