"""Per-model bookkeeping of a batched training run: which models still train, which have
converged or diverged (frozen at a saved state), their best epochs, and how each one ended.

A frozen model keeps its learning rate at 0 and is put back to its saved state after every
step, so that the models still training are not held back and a frozen one cannot drift.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from vaeloss.engine.convergence import ConvergenceRule, Plateau
from vaeloss.engine.models import BatchedVAE
from vaeloss.engine.optim import BatchedAdam

__all__ = ["Divergence", "EndReason", "ModelStates", "ModelStatus"]

EndReason = Literal["converged", "epoch limit", "time limit", "interrupted", "diverged", "fixed epochs"]


@dataclass(frozen=True)
class Divergence:
    """Where a model's loss went non-finite: the optimiser step, the epoch, and the term
    ("KL" or "reconstruction")."""

    step: int
    epoch: int
    term: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "term": self.term}


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
        window: epochs in the plateau rule's window (its progress is measured over them).
    """

    converged: bool
    epochs: int
    best_epoch: int
    last_relative: float | None
    lr: float
    reason: EndReason
    window: int = 5

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
        return f"{self.reason} after {self.epochs} epoch{'s' if self.epochs != 1 else ''}{last}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ModelStates:
    """The state of each of the S models of one training run (see the module docstring)."""

    def __init__(
        self, model: BatchedVAE, opt: BatchedAdam, rule: ConvergenceRule, window: int, *, converge: bool
    ) -> None:
        S = model.n_models
        self.model, self.opt, self.rule, self.converge = model, opt, rule, converge
        self.window = window
        self.plateaus = [Plateau(rule, window) for _ in range(S)]
        self.stopped: list[Divergence | None] = [None] * S
        self.frozen: dict[int, list[Tensor]] = {}
        self.best: dict[int, list[Tensor]] = {}

    @property
    def all_frozen(self) -> bool:
        return len(self.frozen) == self.model.n_models

    @property
    def all_diverged(self) -> bool:
        return all(d is not None for d in self.stopped)

    @property
    def converged(self) -> int:
        """How many models have converged so far."""
        return sum(p.converged for p in self.plateaus)

    def freeze(self, s: int, state: list[Tensor]) -> None:
        """Hold model s at ``state`` from now on (restored after every step; learning rate 0)."""
        self.frozen[s] = state
        self.opt.lr[s] = 0.0

    def diverge(self, s: int, step: int, epoch: int, term: str) -> None:
        """Model s's loss went non-finite: record where, and freeze it as it is."""
        self.stopped[s] = Divergence(step, epoch, term)
        self.best.pop(s, None)
        self.freeze(s, self.model.state_of(s))

    def screen_step(self, per_model: Tensor, kl_dims: Tensor, step: int, epoch: int) -> Tensor:
        """The step's per-model loss [S] with the non-finite entries set to 0, after marking
        the models they belong to as diverged (a KL overflow also ruins the sample, so a
        non-finite KL is reported first)."""
        bad = ~torch.isfinite(per_model)
        if not bool(bad.any()):
            return per_model
        for s in torch.nonzero(bad).flatten().tolist():
            if self.stopped[s] is None and s not in self.frozen:
                term = "KL" if not bool(torch.isfinite(kl_dims[s]).all()) else "reconstruction"
                self.diverge(s, step, epoch, term)
        return torch.where(bad, torch.zeros_like(per_model), per_model)

    def clean_gradients(self) -> None:
        """Zero the non-finite gradients a frozen model may have left in a shared tensor."""
        if not self.frozen:
            return
        for p, _ in self.opt.params:
            if p.grad is not None:
                p.grad.nan_to_num_(0.0, 0.0, 0.0)

    def restore_frozen(self) -> None:
        """Put every frozen model back to its saved state (after an optimiser step)."""
        for s, saved in self.frozen.items():
            self.model.load_state_of(s, saved)

    def observe_epoch(self, rows: list[dict[str, Any]], step: int, epoch: int) -> None:
        """Each training model's validation loss of this epoch: divergence on held-out data,
        best state, learning-rate reduction at a plateau, or convergence (restored to its best
        epoch and frozen)."""
        for s, row in enumerate(rows):
            if s in self.frozen:
                continue
            if not math.isfinite(row["val_loss"]):  # finite training steps, non-finite held out
                term = "reconstruction" if not math.isfinite(row["val_recon"]) else "KL"
                self.diverge(s, step, epoch, term)
                continue
            plateau = self.plateaus[s]
            action = plateau.observe(row["val_loss"])
            if not self.converge:
                continue
            if plateau.best_epoch == plateau.epochs:  # this epoch is its best so far
                self.best[s] = self.model.state_of(s)
            if action == "reduce":
                self.opt.lr[s] *= self.rule.factor
            elif action == "converged":
                self.model.load_state_of(s, self.best[s])
                self.freeze(s, self.best[s])

    def restore_best(self) -> None:
        """At the end of a converged-mode run, every model still training goes back to its
        best epoch."""
        if not self.converge:
            return
        for s, saved in self.best.items():
            if s not in self.frozen:
                self.model.load_state_of(s, saved)

    def statuses(self, ended: EndReason) -> list[ModelStatus]:
        """How each model's training ended, given how the run ended."""
        return [self._status(s, ended) for s in range(self.model.n_models)]

    def _status(self, s: int, ended: EndReason) -> ModelStatus:
        p, lr, w = self.plateaus[s], float(self.opt.lr[s]), self.window
        if self.stopped[s] is not None:
            return ModelStatus(False, p.epochs, p.best_epoch, p.last_relative, lr, "diverged", w)
        if not self.converge:  # the plateau rule only watched: nothing was decided by it
            return ModelStatus(False, p.epochs, p.best_epoch, p.last_relative, lr, ended, w)
        reason: EndReason = "converged" if p.converged else ("epoch limit" if ended == "converged" else ended)
        return ModelStatus(p.converged, p.epochs, p.best_epoch, p.last_relative, lr, reason, w)
