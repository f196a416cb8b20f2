r"""When a model has finished training: the plateau rule, one tracker per model.

After every epoch each model's validation loss :math:`L_e` (its own objective on held-out
data, nats per sample) is observed. With :math:`L^*_e = \min_{e' \le e} L_{e'}` and a window
of :math:`P` epochs, the relative improvement over the window is the share of all the
improvement since the first epoch that the last window brought:

.. math::  r_e = \frac{L^*_{e-P} - L^*_e}{L^*_1 - L^*_e} .

It does not depend on the loss's scale or offset (nats per sample of data of any scale, an
ELBO near 0 or near 10^4). When :math:`r_e <` ``rel_tol`` (a plateau) the model's learning
rate is divided by 5; at a plateau with the learning rate already reduced ``reductions``
times the model has **converged**: it is restored to its best epoch and stops moving. A
model that reaches the epoch or time budget first is **not converged**, and its last
:math:`r_e` says how far it was.

>>> p = Plateau(ConvergenceRule(patience=2, reductions=1))
>>> [p.observe(v) for v in (10.0, 9.0, 9.0, 9.0, 9.0, 9.0)]
['improved', 'improved', 'continue', 'reduce', 'continue', 'converged']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ConvergenceRule", "Plateau", "window_epochs"]

Action = Literal["improved", "continue", "reduce", "converged"]


@dataclass(frozen=True)
class ConvergenceRule:
    """The plateau rule's constants.

    Attributes:
        patience: epochs in the window (at least; see :func:`window_epochs`).
        min_window_steps: optimiser steps the window spans at least (small data sets have few
            steps per epoch).
        rel_tol: relative improvement over the window below which the loss is on a plateau.
        factor: learning-rate multiplier at a plateau.
        reductions: plateaus with a reduction before the next plateau means converged (the
            final learning rate is ``lr * factor**reductions``).
    """

    patience: int = 5
    min_window_steps: int = 100
    rel_tol: float = 1e-4
    factor: float = 0.2
    reductions: int = 2


def window_epochs(rule: ConvergenceRule, steps_per_epoch: int) -> int:
    """Epochs in a window: ``patience``, or more when an epoch has few steps.

    >>> window_epochs(ConvergenceRule(), 10), window_epochs(ConvergenceRule(), 22)
    (10, 5)
    """
    return max(rule.patience, math.ceil(rule.min_window_steps / max(1, steps_per_epoch)))


@dataclass
class Plateau:
    """The plateau rule for one model (see the module docstring)."""

    rule: ConvergenceRule
    window: int | None = None
    best: float = math.inf
    best_epoch: int = 0
    epochs: int = 0
    reductions: int = 0
    last_relative: float | None = None
    converged: bool = False
    _bests: list[float] = field(default_factory=list)
    _since: int = 0

    def observe(self, value: float) -> Action:
        """Record one epoch's validation loss; say what to do with the model."""
        window = self.window or self.rule.patience
        self.epochs += 1
        improved = value < self.best
        if improved:
            self.best, self.best_epoch = value, self.epochs
        self._bests.append(self.best)
        if self.epochs > window:
            before = self._bests[-1 - window]
            gained = self._bests[0] - self.best
            self.last_relative = (before - self.best) / gained if gained > 0 else 0.0
        if self.epochs - self._since < window or self.last_relative is None:
            return "improved" if improved else "continue"
        if self.last_relative >= self.rule.rel_tol:
            return "improved" if improved else "continue"
        if self.reductions < self.rule.reductions:
            self.reductions += 1
            self._since = self.epochs
            return "reduce"
        self.converged = True
        return "converged"
