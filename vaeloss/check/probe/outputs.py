"""How a loss gives its value: a scalar or a one-element array, one value per sample, a dict
or an object with a loss under a key such as ``loss``/``total_loss``/``elbo``
(case-insensitive), or a tuple of values; :func:`read_output` turns each into a vector of
numbers, one per returned value, through the framework's :class:`~vaeloss.check.probe.backend.Backend`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from vaeloss.check.probe.backend import Backend, per_sample

__all__ = ["ReturnValueError", "loss_value", "output_kind", "output_scalar", "read_output"]

_LOSS_KEYS = (
    "loss",
    "total_loss",
    "totalloss",
    "total",
    "loss_total",
    "objective",
    "neg_elbo",
    "nelbo",
    "elbo",
)


class ReturnValueError(Exception):
    """The loss returned something that is not a loss value; the message says what."""


def loss_value(out: Any, backend: Backend) -> tuple[Any, str]:
    """The part of a loss's return value that holds the loss, and how it was found."""
    if isinstance(out, Mapping) or hasattr(out, "keys") and callable(out.keys):
        keys = {str(k).lower(): k for k in out.keys()}
        for key in _LOSS_KEYS:
            if key in keys:
                return out[keys[key]], f"the dict key {keys[key]!r}"
        losses = [k for k in keys if "loss" in k]
        if len(losses) == 1:
            return out[keys[losses[0]]], f"the dict key {keys[losses[0]]!r}"
        raise ReturnValueError(
            f"the function returned a dict without a loss key (keys: {sorted(map(str, out.keys()))}); "
            f"return the total under 'loss'"
        )
    if not (backend.is_array(out) or isinstance(out, (tuple, list))) and hasattr(out, "loss"):
        return out.loss, "its attribute .loss"
    return out, ""


def read_output(out: Any, batch: int, backend: Backend) -> tuple[list[float], str, list[int]]:
    """The numbers a loss returned: a vector with one value per returned value (a tuple gives
    several), how the output was read, and the positions in the tuple of those values.

    An array of shape [B] counts as one value per sample, averaged over the batch as
    frameworks do; a one-element array is a scalar.
    """
    value, how = loss_value(out, backend)
    if isinstance(value, (tuple, list)):
        numbers: list[float] = []
        where: list[int] = []
        for i, element in enumerate(value):
            n = backend.number(element, batch)
            if n is not None:
                numbers.append(n)
                where.append(i)
        if not numbers:
            raise ReturnValueError(
                f"the function returned a {type(value).__name__} of "
                f"{', '.join(type(v).__name__ for v in value)}, with no tensor or number in it; "
                "return the loss"
            )
        return numbers, how or "a tuple", where
    n = backend.number(value, batch)
    if n is None:
        if backend.is_array(value):
            raise ReturnValueError(
                f"the function returned a tensor of shape {backend.shape(value)}; expected a scalar or "
                f"one value per sample (shape [{batch}])"
            )
        raise ReturnValueError(
            f"the function returned {type(value).__name__}, not a tensor; return the loss tensor "
            "(a scalar, or one value per sample)"
        )
    return [n], how, [0]


def output_scalar(out: Any, batch: int, index: int, backend: Backend) -> Any:
    """Element ``index`` of the loss's output as a scalar array of the framework (for a
    gradient), averaged over the batch when it is one value per sample."""
    value, _ = loss_value(out, backend)
    if isinstance(value, (tuple, list)):
        value = value[index]
    return backend.scalar(value, batch)


def output_kind(out: Any, batch: int, backend: Backend) -> Literal["scalar", "per_sample"]:
    """Whether the loss returns a scalar or one value per sample (its first value, for a tuple)."""
    value, _ = loss_value(out, backend)
    first = value[0] if isinstance(value, (tuple, list)) and value else value
    if backend.is_array(first) and per_sample(backend.shape(first), batch) and batch > 1:
        return "per_sample"
    return "scalar"
