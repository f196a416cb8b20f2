"""Schedules of a training run: the KL weight w(t) and the learning rate's factor at step t."""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["Schedule", "kl_weight_schedule", "lr_factor"]

Schedule = Literal["constant", "linear", "cyclical"]


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


def lr_factor(step: int, total: int, *, warmup_steps: int = 0, cosine: bool = False) -> float:
    """The learning rate's factor at ``step``: a linear warm-up over ``warmup_steps``, then 1
    (or a cosine decay to 0 at ``total`` steps).

    >>> [lr_factor(t, 10, warmup_steps=4) for t in (0, 3, 9)]
    [0.25, 1.0, 1.0]
    """
    factor = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if cosine:
        factor *= 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    return factor
