r"""Training of S batched VAEs that differ only in beta (and seed), as one model.

Each model minimises its own loss (:mod:`vaeloss.engine.loss`); the sum over the S models is
minimised with one Adam (:class:`~vaeloss.engine.optim.BatchedAdam`). Adam is element-wise, so
the models do not interact: the sweep equals S separate runs. :class:`~vaeloss.engine.states.
ModelStates` keeps each model's plateau tracker, best state, and whether it is frozen
(converged or diverged); the epoch history is :func:`vaeloss.engine.history.epoch_rows`.

On the CPU, :class:`~vaeloss.threads.ThreadTuner` chooses torch's thread count for the steps
by timing them, so that training keeps its speed when another process is busy.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import torch
from torch import Tensor

from vaeloss.engine import history as engine_history
from vaeloss.engine import loss as engine_loss
from vaeloss.engine.config import TrainConfig, Until
from vaeloss.engine.convergence import window_epochs
from vaeloss.engine.data import Dataset
from vaeloss.engine.models import BatchedLinearVAE, BatchedVAE, model_seeds
from vaeloss.engine.optim import BatchedAdam
from vaeloss.engine.progress import Progress, progress_mode
from vaeloss.engine.schedules import Schedule, kl_weight_schedule, lr_factor
from vaeloss.engine.states import Divergence, EndReason, ModelStates, ModelStatus
from vaeloss.errors import DeviceError, InvalidArgumentError
from vaeloss.threads import ThreadTuner
from vaeloss.validation import check_choice

__all__ = [
    "Divergence",
    "ModelStatus",
    "Schedule",
    "TrainConfig",
    "TrainResult",
    "Until",
    "kl_weight_schedule",
    "resolve_device",
    "train",
]

_Cut = Literal["time limit", "interrupted", "diverged"]


@dataclass
class TrainResult:
    """What training produced.

    Attributes:
        model: the trained batched model (on its device).
        history: one row per (epoch, model): train/val reconstruction and KL (nats per
            sample), KL per latent dim, active units (:mod:`vaeloss.engine.history`).
        stopped: per model, None or the :class:`Divergence` where its loss went non-finite.
        interrupted: training was cut short (Ctrl-C, or ``should_stop`` said so).
        steps: optimiser steps taken; seconds: wall time.
        epochs_run: epochs completed (with a validation row in ``history``).
        status: per model, how its training ended.
        threads: ``(seconds, threads)`` at each change of the CPU thread count (empty on a GPU
            or with one core).
    """

    model: BatchedVAE
    history: pd.DataFrame
    stopped: list[Divergence | None]
    interrupted: bool = False
    steps: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    config: TrainConfig = field(default_factory=TrainConfig)
    epochs_run: int = 0
    status: list[ModelStatus] = field(default_factory=list)
    threads: list[tuple[float, int]] = field(default_factory=list)


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


class _Run:
    """One training run: its tensors, optimiser, per-model states and clock."""

    def __init__(
        self,
        model: BatchedVAE,
        data: Dataset,
        cfg: TrainConfig,
        should_stop: Callable[[], bool] | None,
        on_epoch: Callable[[pd.DataFrame], None] | None,
    ) -> None:
        self.model, self.data, self.cfg, self.on_epoch = model, data, cfg, on_epoch
        self.should_stop = should_stop or (lambda: False)
        self.device = device = resolve_device(cfg.device)
        model.to(device)
        self.x_train, self.x_val = data.x_train.to(device), data.x_val.to(device)
        n = self.x_train.shape[0]
        self.bs = n if cfg.full_batch else min(cfg.batch_size, n)
        self.steps_per_epoch = max(1, n // self.bs)
        self.total = self.steps_per_epoch * cfg.epochs
        self.analytic = (
            cfg.analytic
            if cfg.analytic is not None
            else isinstance(model, BatchedLinearVAE) and cfg.likelihood == "gaussian"
        )
        self.betas = torch.tensor([float(b) for b in cfg.betas], device=device)
        self.terms = torch.compile(engine_loss.terms, dynamic=False) if cfg.compile else engine_loss.terms
        self.opt = BatchedAdam(model.parameter_models(), n_models=model.n_models, lr=cfg.lr)
        self.converge = cfg.until == "converged"
        window = window_epochs(cfg.rule, self.steps_per_epoch)
        self.states = ModelStates(model, self.opt, cfg.rule, window, converge=self.converge)
        self.data_gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.noise_gens = [
            torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + s)
            for s in model_seeds(model.n_models, cfg.model_seeds)
        ]
        self.tuner = ThreadTuner.for_device(device)
        self.rows: list[dict[str, object]] = []
        self.step = self.epochs_run = 0
        self.started = time.perf_counter()
        self.step_seconds: deque[float] = deque(maxlen=21)
        self.validation_seconds = 0.0

    def loop(self, progress: Progress) -> EndReason:
        """Every epoch until the models converge, diverge, or a budget or a signal ends it."""
        ended: EndReason = "epoch limit" if self.converge else "fixed epochs"
        for epoch in range(1, self.cfg.epochs + 1):
            sums, done, cut = self.train_epoch(epoch, progress)
            if cut in ("interrupted", "diverged") or done == 0:
                return cut or "time limit"
            self.validate(epoch, sums / done)
            if self.on_epoch is not None:
                self.on_epoch(pd.DataFrame(self.rows))
            if self.states.all_diverged:
                return "diverged"
            if self.converge and self.states.all_frozen:
                return "converged"
            if cut == "time limit":
                return cut
        return ended

    def train_epoch(self, epoch: int, progress: Progress) -> tuple[Tensor, int, _Cut | None]:
        """The steps of one epoch: their summed (reconstruction, KL) per model [S, 2], how many
        ran, and why the epoch was cut short (None: it was not)."""
        self.model.train()
        sums = torch.zeros(self.model.n_models, 2, device=self.device)
        perm = torch.randperm(self.x_train.shape[0], generator=self.data_gen, device=self.device)
        for i in range(self.steps_per_epoch):
            if self.should_stop():
                return sums, i, "interrupted"
            if self.out_of_time():
                return sums, i, "time limit"
            xb = self.x_train[perm[i * self.bs : (i + 1) * self.bs]]
            start = time.perf_counter()
            with self.tuner.step():
                means = self.one_step(xb, epoch)
            self.step_seconds.append(time.perf_counter() - start)
            if means is None:
                return sums, i, "diverged"
            sums += means
            self.step += 1
            progress.update(1, note=self.note(epoch) if i == 0 else None)
        return sums, self.steps_per_epoch, None

    def one_step(self, xb: Tensor, epoch: int) -> Tensor | None:
        """One optimiser step of every model on batch ``xb``; the step's (reconstruction, KL)
        per model [S, 2], or None when every model is now frozen after a divergence."""
        cfg, states = self.cfg, self.states
        if self.data.binarization == "dynamic":
            xb = torch.bernoulli(xb, generator=self.data_gen)
        eps = (
            None
            if self.analytic
            else torch.stack(
                [
                    torch.randn(xb.shape[0], self.model.latent_dim, generator=g, device=self.device)
                    for g in self.noise_gens
                ]
            )
        )
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            recon, kl_dims, _ = self.terms(self.model, xb, eps, cfg, self.analytic)
        recon, kl_dims = recon.float(), kl_dims.float()
        w = kl_weight_schedule(
            self.step,
            self.total,
            schedule=cfg.schedule,
            warmup_fraction=cfg.warmup_fraction,
            cycles=cfg.cycles,
        )
        per_model = states.screen_step(
            engine_loss.step_loss(recon, kl_dims, self.betas, w, cfg), kl_dims, self.step, epoch
        )
        if states.all_frozen:
            return None
        self.opt.zero_grad()
        per_model.sum().backward()
        states.clean_gradients()
        self.opt.step(
            scale=lr_factor(self.step, self.total, warmup_steps=cfg.lr_warmup_steps, cosine=cfg.cosine_lr)
        )
        states.restore_frozen()
        return torch.stack([recon.detach(), kl_dims.detach().sum(-1)], dim=1)

    def out_of_time(self) -> bool:
        """Whether another step would not finish, with the epoch's validation pass after it,
        within ``max_seconds`` (the first step always runs)."""
        budget = self.cfg.max_seconds
        if budget is None or not self.step_seconds:
            return False
        elapsed = time.perf_counter() - self.started
        return elapsed + self.step_estimate() + self.validation_reserve() > budget

    def step_estimate(self) -> float:
        """The median of the last steps' seconds."""
        recent = sorted(self.step_seconds)
        return recent[len(recent) // 2]

    def validation_reserve(self) -> float:
        """Seconds to keep for the validation pass: the last one's, or before the first an
        estimate from the steps (a forward pass is about a third of a training step)."""
        if self.validation_seconds:
            return self.validation_seconds
        return self.step_estimate() / 3 * math.ceil(self.x_val.shape[0] / self.bs)

    def validate(self, epoch: int, train_means: Tensor) -> None:
        """Measure every model on the held-out rows, record the epoch, and let each model's
        plateau rule decide."""
        self.model.eval()
        start = time.perf_counter()
        rows = engine_history.epoch_rows(
            self.model, self.x_val, train_means, epoch, self.step, self.cfg, self.analytic, self.opt.lr
        )
        self.validation_seconds = time.perf_counter() - start
        self.rows.extend(rows)
        self.epochs_run = epoch
        self.states.observe_epoch(rows, self.step, epoch)

    def note(self, epoch: int) -> str:
        """The progress note: the epoch, and the models converged or the epoch budget."""
        if not self.converge:
            return f"epoch {epoch}/{self.cfg.epochs}"
        budget = "" if self.cfg.max_seconds is None else f", budget {self.cfg.max_seconds:.0f} s"
        return f"epoch {epoch}, {self.states.converged} of {self.model.n_models} converged{budget}"

    def result(self, ended: EndReason) -> TrainResult:
        self.states.restore_best()
        self.model.eval()
        return TrainResult(
            self.model,
            pd.DataFrame(self.rows),
            self.states.stopped,
            ended == "interrupted",
            self.step,
            time.perf_counter() - self.started,
            str(self.device),
            self.cfg,
            self.epochs_run,
            self.states.statuses(ended),
            list(self.tuner.history),
        )


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
    Deterministic on the CPU for a given ``config.seed`` and ``config.model_seeds`` (whatever
    thread count the tuner picks: the kernels give the same bits).
    ``should_stop`` is asked before every step; when it says so (a signal arrived), training
    ends there and the result is marked interrupted, as it is on Ctrl-C (KeyboardInterrupt).
    """
    cfg = config
    cfg.validate()
    if len(cfg.betas) != model.n_models:
        raise InvalidArgumentError(
            f"Expected one beta per model ({model.n_models}) but got betas={list(cfg.betas)}."
        )
    run = _Run(model, data, cfg, should_stop, on_epoch)
    mode = progress_mode(cfg.progress)
    total = None if run.converge else run.total
    progress = Progress(total, what="training", unit="step", mode=mode)
    ended: EndReason
    with run.tuner:
        try:
            ended = run.loop(progress)
        except KeyboardInterrupt:
            ended = "interrupted"
        finally:
            progress.close()
    return run.result(ended)
