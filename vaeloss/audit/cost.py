"""What an audit will cost, known before it is spent: one training step and one evaluation pass
of the planned sweep are timed before training, and the budgets are checked against them.

When the time budget cannot hold one epoch per model, or the evaluation budget the smallest
evaluation, the audit says so before training, with the estimate and what to change; it still
keeps to its budgets (the verdict is then "too early to tell", the evaluation smaller).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from vaeloss.audit.text import format_seconds
from vaeloss.engine.config import TrainConfig
from vaeloss.engine.data import Dataset
from vaeloss.engine.evaluate import EvaluationPlan
from vaeloss.engine.loss import step_loss, terms
from vaeloss.engine.models import BatchedLinearVAE, BatchedVAE
from vaeloss.engine.optim import BatchedAdam
from vaeloss.jsontypes import JsonObject

__all__ = ["CostEstimate", "estimate_training", "time_once"]


def time_once(work: Callable[[], Any]) -> float:
    """Seconds of one run of ``work``: its second run, or its first when that took over half a
    second (a slow model is not run twice to be timed)."""
    start = time.perf_counter()
    work()
    first = time.perf_counter() - start
    if first > 0.5:
        return first
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _training_step(model: BatchedVAE, data: Dataset, cfg: TrainConfig) -> Callable[[], None]:
    """One training step of a copy of ``model`` (the model itself and every random stream of
    the training are left as they are)."""
    twin = copy.deepcopy(model)
    twin.train()
    opt = BatchedAdam(twin.parameter_models(), n_models=twin.n_models, lr=cfg.lr)
    bs = min(cfg.batch_size, data.x_train.shape[0])
    device = next(twin.parameters()).device
    xb = data.x_train[:bs].to(device)
    betas = torch.tensor([float(b) for b in cfg.betas], device=device)
    analytic = isinstance(twin, BatchedLinearVAE) and cfg.likelihood == "gaussian"
    g = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        eps = (
            None if analytic else torch.randn(twin.n_models, bs, twin.latent_dim, generator=g, device=device)
        )
        recon, kl_dims, _ = terms(twin, xb, eps, cfg, analytic)
        opt.zero_grad()
        step_loss(recon, kl_dims, betas, 1.0, cfg).sum().backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


@dataclass(frozen=True)
class CostEstimate:
    """The planned sweep's measured speed and what the budgets hold.

    Attributes:
        step_seconds: one training step of all the sweep's models at once.
        steps_per_epoch: steps in one epoch of the training rows.
        epoch_seconds: one epoch with its validation pass, estimated.
        training_budget: the seconds the sweep may train.
        budget_share: the sweep's share of ``--time-budget`` (the rest calibrates the decoder
            variance of a squared-error loss).
        evaluation: the evaluation planned for its budget (:func:`~vaeloss.engine.evaluate.
            plan_evaluation`, on the untrained models: the same cost as trained ones).
    """

    step_seconds: float
    steps_per_epoch: int
    epoch_seconds: float
    training_budget: float
    evaluation: EvaluationPlan
    budget_share: float = 1.0

    @property
    def epochs_in_budget(self) -> float:
        return self.training_budget / self.epoch_seconds if self.epoch_seconds > 0 else math.inf

    def notices(self, *, models: int) -> list[str]:
        """What the user should know before the audit spends its budgets (empty: they hold)."""
        out = []
        if self.epochs_in_budget < 1:
            need = math.ceil(self.epoch_seconds * 30 / self.budget_share / 60) * 60
            out.append(
                f"the time budget cannot hold one epoch: one epoch of the {models} models takes about "
                f"{format_seconds(self.epoch_seconds)} ({self.steps_per_epoch} steps of "
                f"{format_seconds(self.step_seconds)} and a validation pass) but the sweep may train "
                f"{format_seconds(self.training_budget)}, so "
                f"the models will stop too early to judge. Try --sweep none (one model), fewer betas "
                f"(--sweep X,Y), or --time-budget {need} (about 30 epochs)"
            )
        ev = self.evaluation
        if not ev.fits:
            out.append(
                f"the evaluation budget cannot hold the smallest evaluation: one decoder pass over "
                f"{ev.rows} held-out rows takes {format_seconds(ev.decode_seconds)}, so it will take about "
                f"{format_seconds(ev.estimated_seconds)} against --eval-budget {ev.budget_seconds:g}, "
                f"without the "
                f"IWAE bound. Try --eval-budget {math.ceil(ev.decode_seconds * 100)}"
            )
        elif ev.iwae_samples == 0:
            out.append(
                f"the evaluation budget holds no IWAE bound (one decoder pass over {ev.rows} rows "
                f"takes {format_seconds(ev.decode_seconds)}): the models will be compared without it, so no "
                f"beta can be recommended by likelihood. Try --eval-budget "
                f"{math.ceil(ev.decode_seconds * 100)}"
            )
        return out

    def to_json(self) -> JsonObject:
        out = asdict(self)
        out["evaluation"] = self.evaluation.to_json()
        out["epochs_in_budget"] = self.epochs_in_budget
        return out


def estimate_training(model: BatchedVAE, data: Dataset, cfg: TrainConfig) -> tuple[float, int, float]:
    """Seconds of one training step of ``model`` (all its models at once), the steps of an
    epoch, and the seconds of an epoch with its validation pass (a forward pass over the
    held-out rows, about a third of a step per batch of them)."""
    step = time_once(_training_step(model, data, cfg))
    n = data.x_train.shape[0]
    bs = min(cfg.batch_size, n)
    steps = max(1, n // bs)
    validation = step / 3 * math.ceil(data.x_val.shape[0] / bs)
    return step, steps, steps * step + validation
