"""Conversions between units and conventions.

Units: nats and bits, per batch / per sample / per data dim; mean squared error and
Gaussian NLL. Conventions: a KL weight in one convention's units to another's.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor

from vaeloss.objective.convention import Convention
from vaeloss.objective.likelihoods import gaussian_nll_from_sq
from vaeloss.validation import check_choice, check_nonnegative, check_positive, check_positive_int

__all__ = [
    "bits_per_dim",
    "bits_to_nats",
    "convert_kl_weight",
    "gaussian_nll_to_mse",
    "mse_to_gaussian_nll",
    "nats_to_bits",
    "per_batch_to_per_sample",
    "per_sample_to_per_dim",
]

Number = float | Tensor
_LN2 = math.log(2.0)


def nats_to_bits(value: Number) -> Number:
    """Nats to bits (divide by ln 2).

    >>> nats_to_bits(math.log(2.0))
    1.0
    """
    return value / _LN2


def bits_to_nats(value: Number) -> Number:
    """Bits to nats (multiply by ln 2).

    >>> bits_to_nats(1.0) == math.log(2.0)
    True
    """
    return value * _LN2


def per_batch_to_per_sample(
    value: Number, *, batch_size: int, batch_reduction: Literal["sum", "mean"] = "sum"
) -> Number:
    """A value reduced over a batch to its per-sample average.

    >>> per_batch_to_per_sample(256.0, batch_size=128)
    2.0
    """
    check_positive_int("batch_size", batch_size, example=128)
    check_choice("batch_reduction", batch_reduction, ("sum", "mean"))
    return value / batch_size if batch_reduction == "sum" else value


def per_sample_to_per_dim(value: Number, *, data_dim: int) -> Number:
    """A per-sample value (summed over data dims) to a per-data-dim value.

    >>> per_sample_to_per_dim(784.0, data_dim=784)
    1.0
    """
    check_positive_int("data_dim", data_dim, example=784)
    return value / data_dim


def bits_per_dim(nats_per_sample: Number, *, data_dim: int) -> Number:
    """Per-sample NLL in nats to bits per data dimension.

    >>> round(bits_per_dim(784 * math.log(2.0), data_dim=784), 12)
    1.0
    """
    return nats_to_bits(per_sample_to_per_dim(nats_per_sample, data_dim=data_dim))


def mse_to_gaussian_nll(mse: Number, *, sigma: float = 1.0, data_dim: int | None = None) -> Number:
    """Mean squared error per element to Gaussian NLL in nats for a decoder std ``sigma``.

    Per element: ``mse / (2 sigma^2) + log sigma + log(2 pi) / 2``; per sample (summed over
    the data dims) when ``data_dim`` is given.

    >>> round(mse_to_gaussian_nll(0.0), 4)
    0.9189
    """
    sigma = check_positive("sigma", sigma)
    if isinstance(mse, float | int):
        check_nonnegative("mse", mse)
    per_elem = gaussian_nll_from_sq(mse, 2 * math.log(sigma))
    if data_dim is None:
        return per_elem
    check_positive_int("data_dim", data_dim, example=784)
    return per_elem * data_dim


def gaussian_nll_to_mse(nll: Number, *, sigma: float = 1.0, data_dim: int | None = None) -> Number:
    """Inverse of :func:`mse_to_gaussian_nll`.

    >>> gaussian_nll_to_mse(mse_to_gaussian_nll(0.25, sigma=0.5), sigma=0.5)
    0.25
    """
    sigma = check_positive("sigma", sigma)
    per_elem = nll if data_dim is None else nll / check_positive_int("data_dim", data_dim, example=784)
    # the NLL is sq / (2 sigma^2) + its value at sq = 0
    out = (per_elem - gaussian_nll_from_sq(0.0, 2 * math.log(sigma))) * 2 * sigma**2
    if isinstance(out, Tensor):
        return out
    return float(round(out, 15))


def convert_kl_weight(
    weight: float, source: Convention, target: Convention, *, B: int, D: int, k: int
) -> float:
    """A KL multiplier in ``source``'s units to the one in ``target``'s units, same beta.

    >>> from vaeloss.objective.presets import get_convention
    >>> convert_kl_weight(1e-4, get_convention("size_average"), get_convention("per_sample_mean"),
    ...                   B=128, D=784, k=20)
    10.0352
    """
    beta = source.elbo_beta_for(check_nonnegative("weight", weight), B=B, D=D, k=k)
    return target.kl_weight_for(beta, B=B, D=D, k=k)
