"""The submodules of a model as the model probe taps them (:mod:`vaeloss.check.model_probe`):
a torch module's ``named_modules``, or a Keras 3 model's layers, nested models included, named
by their paths (``encoder.z_mean``). On Keras's torch backend every layer is a torch module
whose ``__call__`` runs torch's forward hooks, so the same hooks record and replace a Keras
layer's output; its weights stay float32 (Keras computes in its layers' dtype), so the fits
are held to float32's resolution (the Keras backend's).
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

__all__ = ["is_keras", "keras_input_shapes", "submodules"]


def is_keras(model: Any) -> bool:
    """Whether ``model`` is a Keras layer or model (a torch module on Keras's torch backend)."""
    return any(c.__module__ == "keras" or c.__module__.startswith("keras.") for c in type(model).__mro__)


def _keras_layers(layer: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    for child in layer._flatten_layers(include_self=False, recursive=False):  # type: ignore[operator]
        name = f"{prefix}{child.name}"
        out.append((name, child))
        out += _keras_layers(child, f"{name}.")
    return out


def submodules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every submodule by its dotted name (the model itself left out)."""
    if is_keras(model):
        return _keras_layers(model, "")
    return [(name, m) for name, m in model.named_modules() if name]


def keras_input_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    """The sample shapes of a Keras model's ``keras.Input`` layers (the batch dim left out),
    widest first: the encoder's before the decoder's latent input, whichever was built first."""
    shapes: list[tuple[int, ...]] = []
    for _, layer in submodules(model):
        shape = getattr(layer, "batch_shape", None)
        if type(layer).__name__ == "InputLayer" and shape and all(isinstance(d, int) for d in shape[1:]):
            shapes.append(tuple(shape[1:]))
    return sorted(dict.fromkeys(shapes), key=lambda s: -math.prod(s))
