"""Losses written in TensorFlow (``tf.*`` ops, ``tf.keras.losses``, Keras 3 on TensorFlow):
eager float64 tensors in, gradients by ``tf.GradientTape``.

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

from vaeloss.check.probe.backend import per_sample
from vaeloss.check.probe.backend_numpy import ArrayReading

__all__ = ["TensorFlowBackend"]


class TensorFlowBackend(ArrayReading):
    """TensorFlow's eager tensors (channels-last images)."""

    name = "tensorflow"
    without_distributions = "taking distribution objects needs TensorFlow Probability"

    def native(self, value: Any) -> bool:
        return isinstance(value, (tf.Tensor, tf.Variable))

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value.numpy()) if self.native(value) else np.asarray(value)

    def array(self, value: Tensor) -> tf.Tensor:
        return tf.constant(value.detach().numpy())

    def seed(self, seed: int) -> None:
        tf.random.set_seed(seed)
        super().seed(seed)

    def scalar(self, value: Any, batch: int) -> Any:
        t = tf.convert_to_tensor(value)
        return tf.reduce_mean(t) if per_sample(tuple(t.shape), batch) else tf.reshape(t, ())

    def gradients(self, fn: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor | None] | None:
        leaves = [tf.constant(t.detach().numpy()) for t in inputs]
        with tf.GradientTape() as tape:
            for leaf in leaves:
                tape.watch(leaf)
            out = fn(*leaves)
        if not tf.is_tensor(out):
            return None
        grads = tape.gradient(out, leaves)
        if all(g is None for g in grads):
            return None
        return [None if g is None else torch.from_numpy(np.asarray(tf.convert_to_tensor(g))) for g in grads]
