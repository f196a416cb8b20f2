"""Losses written in MLX (Apple's array framework, whose CPU build also runs on Linux):
float64 arrays in (MLX computes float64 on the CPU, its ``exp`` and ``log`` to about float32's
precision), gradients by ``mx.grad``.

MLX has no distribution objects: a loss taking ``q`` is not called that way. Its random
numbers are seeded with ``mx.random.seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx.core as mx
import numpy as np
import torch
from torch import Tensor

from vaeloss.check.probe.backend import FLOAT32, per_sample
from vaeloss.check.probe.backend_numpy import ArrayReading

__all__ = ["MlxBackend"]


class MlxBackend(ArrayReading):
    """MLX arrays (channels-last images, as MLX's convolutions take them)."""

    name = "mlx"
    resolution = 4 * FLOAT32
    """MLX keeps float64 but computes its transcendental functions on it to about float32's
    precision (``mx.exp`` on float64: relative errors up to 2.5e-7, measured)."""

    def native(self, value: Any) -> bool:
        return isinstance(value, mx.array)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value) if self.native(value) else np.asarray(value)

    def array(self, value: Tensor) -> mx.array:
        return mx.array(value.detach().numpy(), dtype=mx.float64)

    def seed(self, seed: int) -> None:
        mx.random.seed(seed)
        super().seed(seed)

    def scalar(self, value: Any, batch: int) -> Any:
        a = value if self.native(value) else mx.array(np.asarray(value, dtype=np.float64), dtype=mx.float64)
        return mx.mean(a) if per_sample(tuple(a.shape), batch) else mx.reshape(a, ())

    def gradients(self, fn: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor | None] | None:
        arrays = [self.array(t) for t in inputs]
        try:
            grads = mx.grad(lambda *xs: mx.reshape(fn(*xs), ()), argnums=list(range(len(arrays))))(*arrays)
        except (ValueError, TypeError):
            return None  # the loss leaves MLX (float(), NumPy): no gradient reaches the inputs
        return [torch.from_numpy(np.array(g)) for g in grads]
