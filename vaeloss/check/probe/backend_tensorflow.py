"""Losses written in TensorFlow (``tf.*`` ops, ``tf.keras.losses``, Keras 3 on TensorFlow):
eager float64 tensors in (float32 for code that makes float32 tensors itself), gradients by
``tf.GradientTape``.

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

from vaeloss.check.probe.backend import FLOAT32, per_sample
from vaeloss.check.probe.backend_numpy import ArrayReading

__all__ = ["TensorFlow32Backend", "TensorFlowBackend"]


class TensorFlowBackend(ArrayReading):
    """TensorFlow's eager tensors (channels-last images), float64; float32 after it for code
    that makes float32 tensors of its own (``tf.math.log(2. * np.pi)``, ``tf.random.normal``),
    which TensorFlow will not mix with float64 (:meth:`fallbacks`)."""

    name = "tensorflow"
    without_distributions = "taking distribution objects needs TensorFlow Probability"
    dtype = tf.float64

    def fallbacks(self) -> tuple[TensorFlowBackend, ...]:
        return (TensorFlow32Backend(),) if self.dtype == tf.float64 else ()

    def native(self, value: Any) -> bool:
        return isinstance(value, (tf.Tensor, tf.Variable))

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value.numpy()) if self.native(value) else np.asarray(value)

    def array(self, value: Tensor) -> tf.Tensor:
        return tf.constant(value.detach().numpy(), dtype=self.dtype)

    def seed(self, seed: int) -> None:
        tf.random.set_seed(seed)
        super().seed(seed)

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
