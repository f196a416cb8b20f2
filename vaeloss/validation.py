"""Argument validation, in one place, with messages that echo ``name=value``.

Every message has the form ``Expected X but got name=value. Try ...``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

from vaeloss.errors import InvalidArgumentError, ShapeMismatchError

__all__ = [
    "check_choice",
    "check_nonnegative",
    "check_positive",
    "check_positive_int",
    "check_probabilities",
    "check_same_shape",
    "check_tensor",
]


def _is_tensor(value: Any) -> bool:
    """isinstance(value, torch.Tensor) without importing torch (it is loaded if value is one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _fmt(value: Any) -> str:
    if _is_tensor(value):
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    return repr(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a clear error.

    >>> check_choice("reduction", "sum", ("sum", "mean"))
    'sum'
    """
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise InvalidArgumentError(
            f"Expected one of {listed} but got {name}={_fmt(value)}. Try {name}={options[0]!r}."
        )
    return str(value)


def _number(name: str, value: Any) -> float:
    if _is_tensor(value):
        if value.numel() != 1:
            raise InvalidArgumentError(f"Expected a number but got {name}={_fmt(value)}. Try a Python float.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"Expected a number but got {name}={_fmt(value)}. Try a Python float.")
    if math.isnan(value):
        raise InvalidArgumentError(
            f"Expected a finite number but got {name}=nan. Try a finite value such as {name}=1.0."
        )
    return float(value)


def check_nonnegative(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number >= 0.

    >>> check_nonnegative("beta", 0.5)
    0.5
    """
    number = _number(name, value)
    if number < 0 or math.isinf(number):
        raise InvalidArgumentError(
            f"Expected a finite number >= 0 but got {name}={value!r}. "
            f"Try {name}=1.0 (the true ELBO) or a small positive value."
        )
    return number


def check_positive(name: str, value: Any, *, example: float = 1.0) -> float:
    """Return ``value`` as a float if it is a finite number > 0; ``example`` is the value the
    error suggests (the argument's default where it has one).

    >>> check_positive("sigma", 2)
    2.0
    """
    number = _number(name, value)
    if number <= 0 or math.isinf(number):
        raise InvalidArgumentError(
            f"Expected a finite number > 0 but got {name}={value!r}. Try {name}={example:g}."
        )
    return number


def check_positive_int(name: str, value: Any, *, example: int) -> int:
    """Return ``value`` if it is an integer >= 1; ``example`` is the value the error suggests.

    >>> check_positive_int("batch_size", 128, example=128)
    128
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(
            f"Expected an integer >= 1 but got {name}={value!r}. Try {name}={example}."
        )
    return value


def check_tensor(name: str, value: Any, *, min_dim: int = 1) -> Tensor:
    """Return ``value`` if it is a floating-point tensor with at least ``min_dim`` dims."""
    if not _is_tensor(value):
        raise InvalidArgumentError(
            f"Expected a torch.Tensor but got {name}={_fmt(value)}. Try torch.as_tensor({name})."
        )
    if not value.is_floating_point():
        raise InvalidArgumentError(
            f"Expected a floating-point tensor but got {name}={_fmt(value)}. Try {name}.float()."
        )
    if value.dim() < min_dim:
        raise ShapeMismatchError(
            f"Expected a tensor with a batch dimension (at least {min_dim} dims) but got "
            f"{name}={_fmt(value)}. Try {name}.unsqueeze(0)."
        )
    return value


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise :class:`ShapeMismatchError` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ShapeMismatchError(
            f"Expected {name_a} and {name_b} of the same shape but got "
            f"{name_a}.shape={tuple(a.shape)}, {name_b}.shape={tuple(b.shape)}. "
            f"Try {name_b}.view_as({name_a})."
        )


def check_probabilities(name: str, value: Tensor) -> Tensor:
    """Raise unless every entry of ``value`` lies in [0, 1] (NaN included)."""
    import torch

    with torch.no_grad():
        bad = ~((value >= 0) & (value <= 1))
        if bool(bad.any()):
            first = value[bad].flatten()[0].item()
            raise InvalidArgumentError(
                f"Expected probabilities in [0, 1] but got {name} with {int(bad.sum())} "
                f"value(s) outside, e.g. {name}={first!r}. Try torch.sigmoid({name}) or "
                f"pass logits with decoder_output='logits'."
            )
    return value
