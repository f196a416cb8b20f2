"""Losses written in JAX (``jnp``, ``optax`` losses, a flax model's functions): float64
arrays in (``jax_enable_x64``), gradients by ``jax.grad``.

JAX has no global random state: a loss that samples takes a key, which the probe cannot
give; Keras 3 on JAX is seeded through Keras. Distributions (``distrax``) are not tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import Tensor

from vaeloss.check.probe.backend import per_sample
from vaeloss.check.probe.backend_numpy import ArrayReading

__all__ = ["JaxBackend"]

jax.config.update("jax_enable_x64", True)


class JaxBackend(ArrayReading):
    """JAX arrays (channels-last images)."""

    name = "jax"

    def native(self, value: Any) -> bool:
        return isinstance(value, jax.Array)

    def array(self, value: Tensor) -> jax.Array:
        return jnp.asarray(value.detach().numpy())

    def scalar(self, value: Any, batch: int) -> Any:
        a = jnp.asarray(value)
        return a.mean() if per_sample(a.shape, batch) else a.reshape(())

    def gradients(self, fn: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor | None] | None:
        arrays = [jnp.asarray(t.detach().numpy()) for t in inputs]
        try:
            grads = jax.grad(lambda *xs: jnp.asarray(fn(*xs)).reshape(()), argnums=tuple(range(len(arrays))))(
                *arrays
            )
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
            return None  # the loss leaves JAX (float(), NumPy): no gradient reaches the inputs
        return [torch.from_numpy(np.array(g)) for g in grads]
