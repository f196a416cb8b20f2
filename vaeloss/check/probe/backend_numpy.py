"""Losses written with NumPy arrays (and the reading of a number that every backend whose
arrays convert to NumPy shares).

NumPy has no gradients: a NumPy loss gets no gradient findings, and the report says so.
Distributions (a loss taking ``q``) have no NumPy form: such call forms are not tried.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
from torch import Tensor

from vaeloss.check.probe.backend import Invocation, per_sample, seed_keras

__all__ = ["ArrayReading", "NumpyBackend"]


class ArrayReading:
    """What the backends of frameworks other than torch share: numbers read from their arrays
    (their own, or NumPy's) through :meth:`to_numpy`, never while they are being traced for a
    gradient; no distribution objects (a loss taking ``q`` is not called that way); calls that
    build no graph unless a gradient is taken; channels-last images, float64 arithmetic, and
    NumPy's and Keras's random numbers seeded."""

    name = "arrays"
    without_distributions = "takes arrays, not distribution objects"
    channels_last = True
    differentiable = True
    resolution = 0.0

    def seed(self, seed: int) -> None:
        np.random.seed(seed)
        seed_keras(seed)

    def call(self, call: Invocation) -> Any:
        return call.as_written()

    def fallbacks(self) -> tuple[Any, ...]:
        """Coarser variants to try when the loss refuses this backend's arrays (none here)."""
        return ()

    def normal(self, loc: Tensor, scale: Tensor) -> Any:
        raise TypeError(f"a {self.name} loss {self.without_distributions}")

    def bernoulli(self, probs: Tensor) -> Any:
        raise TypeError(f"a {self.name} loss {self.without_distributions}")

    def no_grad(self) -> AbstractContextManager[None]:
        return nullcontext()

    def native(self, value: Any) -> bool:
        """Whether ``value`` is an array of the framework."""
        raise NotImplementedError

    def to_numpy(self, value: Any) -> np.ndarray:
        """An array of the framework (:meth:`native`) as a NumPy array."""
        return np.asarray(value)

    def is_array(self, value: Any) -> bool:
        return isinstance(value, np.ndarray) or self.native(value)

    def shape(self, value: Any) -> tuple[int, ...]:
        return tuple(value.shape) if self.is_array(value) else ()

    def number(self, value: Any, batch: int) -> float | None:
        arr = self.to_numpy(value) if self.is_array(value) else None
        if arr is None:
            if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
                return float(value)
            return None
        if arr.size == 1:
            return float(arr.reshape(()))
        if per_sample(arr.shape, batch):
            return float(arr.astype(np.float64).mean())
        return None


class NumpyBackend(ArrayReading):
    """Losses written in NumPy: arrays in, a float or an array out, no gradient."""

    name = "numpy"
    differentiable = False

    def native(self, value: Any) -> bool:
        return isinstance(value, np.ndarray)

    def array(self, value: Tensor) -> np.ndarray:
        return value.detach().numpy().copy()

    def scalar(self, value: Any, batch: int) -> Any:
        arr = np.asarray(value, dtype=np.float64)
        return arr.mean() if per_sample(arr.shape, batch) else arr.reshape(())

    def gradients(self, fn: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor | None] | None:
        return None
