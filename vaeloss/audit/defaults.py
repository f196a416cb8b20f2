"""The audit's default settings: one rule for every data set and model, nothing tuned per data set.

Training runs each model to convergence (the plateau rule of
:mod:`vaeloss.engine.convergence`) within an epoch and time budget, so the defaults need not
guess a number of epochs; the built-in models see standardised data
(:class:`~vaeloss.engine.models.DataScaling`), so one learning rate suits data of any scale.
"""

from __future__ import annotations

import math

__all__ = [
    "BATCH_SIZE",
    "EVAL_BUDGET",
    "LEARNING_RATE",
    "LR_WARMUP_STEPS",
    "MAX_EPOCHS",
    "SWEEP_SHARE_WHEN_CALIBRATING",
    "TIME_BUDGET",
    "hidden_for",
    "latent_dim_for",
]

BATCH_SIZE = 64
LEARNING_RATE = 3e-3
LR_WARMUP_STEPS = 100
"""The learning rate rises linearly over the first steps (Adam's early steps are noisy)."""
MAX_EPOCHS = 1000
TIME_BUDGET = 180.0
"""Seconds for everything before the evaluation: the setup, the sweep, and the calibration when
there is one."""
SWEEP_SHARE_WHEN_CALIBRATING = 2 / 3
"""The sweep's share of the time budget when the decoder variance is calibrated afterwards."""
EVAL_BUDGET = 45.0
"""Seconds the IWAE evaluation of the sweep aims at (K and the rows are chosen to fit)."""


def latent_dim_for(data_dim: int) -> int:
    """The built-in models' latent dim: about sqrt(D), from 2 to 20.

    >>> [latent_dim_for(d) for d in (8, 64, 784)]
    [3, 8, 20]
    """
    return min(20, max(2, math.ceil(math.sqrt(data_dim))))


def hidden_for(data_dim: int) -> tuple[int, ...]:
    """The built-in MLP's hidden layer: twice the data dim, from 64 to 400 units.

    >>> [hidden_for(d) for d in (8, 64, 784)]
    [(64,), (128,), (400,)]
    """
    return (min(400, max(64, 2 * data_dim)),)
