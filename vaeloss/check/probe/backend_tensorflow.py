"""Losses written in TensorFlow (``tf.*`` ops, ``tf.keras.losses``, Keras 3 on TensorFlow):
eager float64 tensors in (float32 for code that makes float32 tensors itself), gradients by
``tf.GradientTape``.

Each call runs as a ``tf.function`` traced once per shape
(:mod:`~vaeloss.check.probe.compiled`; no AutoGraph, so a Python branch on a tensor's value
runs as written): TensorFlow's eager ops cost about 0.25 ms each on this 2-core machine, a
whole call as a graph about the cost of one. A graph with random ops (``tf.random.normal`` in
the loss) runs as written, seeded by ``tf.random.set_seed`` before each call.

Distributions (a loss taking ``q``) would need TensorFlow Probability: such call forms are not
tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import torch
from torch import Tensor

from vaeloss.check.probe.backend import FLOAT32, Invocation, per_sample, seed_keras
from vaeloss.check.probe.backend_numpy import ArrayReading
from vaeloss.check.probe.compiled import CompiledCalls, DrawsRandomNumbers

__all__ = ["TensorFlow32Backend", "TensorFlowBackend"]

_RANDOM_OPS = ("Random", "Stateful", "Multinomial", "TruncatedNormal", "RngReadAndSkip", "RngSkip")
"""Parts of the names of TensorFlow's random ops (``RandomStandardNormal``,
``StatelessRandomNormalV2``, ``StatefulUniform``...)."""


def _graph(traced: Callable[..., Any]) -> Callable[..., Any]:
    """``traced`` as a ``tf.function`` (one trace: its shapes are fixed), refusing a graph that
    draws random numbers."""
    function = tf.function(traced, autograph=False)
    checked: list[bool] = []

    def run(*arrays: Any) -> Any:
        if not checked:
            graph = function.get_concrete_function(*arrays).graph.as_graph_def()
            ops = [n.op for n in graph.node] + [n.op for f in graph.library.function for n in f.node_def]
            if any(part in op for op in ops for part in _RANDOM_OPS):  # tf.map_fn's bodies too
                raise DrawsRandomNumbers
            checked.append(True)
        return function(*arrays)

    return run


class TensorFlowBackend(ArrayReading):
    """TensorFlow's eager tensors (channels-last images), float64; float32 after it for code
    that makes float32 tensors of its own (``tf.math.log(2. * np.pi)``, ``tf.random.normal``),
    which TensorFlow will not mix with float64 (:meth:`fallbacks`)."""

    name = "tensorflow"
    without_distributions = "taking distribution objects needs TensorFlow Probability"
    dtype = tf.float64

    def __init__(self) -> None:
        self._calls = CompiledCalls(lambda leaf: isinstance(leaf, tf.Tensor), _graph)
        self._seed = 0

    def call(self, call: Invocation) -> Any:
        def seeded() -> Any:
            tf.random.set_seed(self._seed)
            seed_keras(self._seed)
            return call.as_written()

        return self._calls.call(call, as_written=seeded)

    def seed(self, seed: int) -> None:
        """NumPy's numbers now; TensorFlow's and Keras's only for a call run as written (a
        compiled call has no random ops, and ``tf.random.set_seed`` clears TensorFlow's caches
        of kernels and graphs: 5 ms a call)."""
        np.random.seed(seed)
        self._seed = seed

    def fallbacks(self) -> tuple[TensorFlowBackend, ...]:
        return (TensorFlow32Backend(),) if self.dtype == tf.float64 else ()

    def native(self, value: Any) -> bool:
        return isinstance(value, (tf.Tensor, tf.Variable))

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value.numpy()) if self.native(value) else np.asarray(value)

    def array(self, value: Tensor) -> tf.Tensor:
        return tf.constant(value.detach().numpy(), dtype=self.dtype)

    def scalar(self, value: Any, batch: int) -> Any:
        t = tf.convert_to_tensor(value)
        return tf.reduce_mean(t) if per_sample(tuple(t.shape), batch) else tf.reshape(t, ())

    def gradients(self, fn: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor | None] | None:
        leaves = [self.array(t) for t in inputs]
        with tf.GradientTape() as tape:
            for leaf in leaves:
                tape.watch(leaf)
            out = fn(*leaves)
        if not tf.is_tensor(out):
            return None
        grads = tape.gradient(out, leaves)
        if all(g is None for g in grads):
            return None
        arrays = [None if g is None else np.asarray(tf.convert_to_tensor(g), dtype=np.float64) for g in grads]
        return [None if a is None else torch.from_numpy(a) for a in arrays]


class TensorFlow32Backend(TensorFlowBackend):
    """TensorFlow in float32: the probe's values rounded to float32, the fits held to its
    resolution (the report says so)."""

    dtype = tf.float32
    resolution = FLOAT32
