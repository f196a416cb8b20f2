"""Losses written in JAX (``jnp``, ``optax`` losses, a flax model's functions): float64
arrays in (``jax_enable_x64``), gradients by ``jax.grad``.

Each call is compiled whole by ``jax.jit``, once per shape
(:mod:`~vaeloss.check.probe.compiled`): run op by op, JAX compiles every operation anew at each
of the probe's shapes (130 compilations, 5 of the 7.5 s of a check of the flax example's
``compute_metrics``). Not when Keras is imported (Keras on JAX draws from its own seeded
generator, which a compilation would freeze): then every call runs as written.

JAX has no global random state: a loss that samples takes a key, which the probe cannot
give. Distributions (``distrax``) are not tried.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import Tensor

from vaeloss.check.probe.backend import Invocation, per_sample
from vaeloss.check.probe.backend_numpy import ArrayReading
from vaeloss.check.probe.compiled import CompiledCalls

__all__ = ["JaxBackend"]

jax.config.update("jax_enable_x64", True)


class JaxBackend(ArrayReading):
    """JAX arrays (channels-last images); calls compiled per shape."""

    name = "jax"

    def __init__(self) -> None:
        self._calls = CompiledCalls(lambda leaf: isinstance(leaf, jax.Array), jax.jit)

    def call(self, call: Invocation) -> Any:
        if "keras" in sys.modules:  # Keras on JAX draws from its own seeded generator: as written
            return call.as_written()
        return self._calls.call(call)

    def native(self, value: Any) -> bool:
        return isinstance(value, jax.Array)

    def array(self, value: Tensor) -> jax.Array:
        return jax.device_put(value.detach().numpy())  # jnp.asarray would compile a copy per shape

    def scalar(self, value: Any, batch: int) -> Any:
        a = jnp.asarray(value)
        return a.mean() if per_sample(a.shape, batch) else a.reshape(())

    def gradients(self, fn: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor | None] | None:
        arrays = [self.array(t) for t in inputs]
        grad = jax.grad(lambda *xs: jnp.asarray(fn(*xs)).reshape(()), argnums=tuple(range(len(arrays))))
        try:
            grads = jax.jit(grad)(*arrays)
        except Exception:  # noqa: BLE001 - not traceable whole: op by op, as below
            grads = None
        try:
            grads = grad(*arrays) if grads is None else grads
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
            return None  # the loss leaves JAX (float(), NumPy): no gradient reaches the inputs
        return [torch.from_numpy(np.array(g)) for g in grads]
