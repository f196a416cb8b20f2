"""The probe's synthetic inputs: reconstructions and data [B, D], posterior means and scales
[B, k], in float64, from seeded generators; and the sample shapes a loss may take."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "DTYPE",
    "SEED",
    "channels_last_order",
    "generator",
    "latent_inputs",
    "layouts",
    "recon_inputs",
    "resize",
]

DTYPE = torch.float64
SEED = 1234
"""The seed of the framework's random numbers before each call of the loss."""


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def recon_inputs(B: int, D: int, g: torch.Generator, binary: bool = False) -> tuple[Tensor, Tensor]:
    """Reconstructions in [0.05, 0.95] and data in [0, 1] (or binary), [B, D] each."""
    r = 0.05 + 0.9 * torch.rand(B, D, generator=g, dtype=DTYPE)
    x = torch.rand(B, D, generator=g, dtype=DTYPE)
    return r, ((x > 0.5).to(DTYPE) if binary else x)


def latent_inputs(B: int, k: int, g: torch.Generator, kind: int) -> tuple[Tensor, Tensor]:
    """Posterior means and scales [B, k] of one of four kinds: ordinary (0), near the prior for
    log-parameterisations (1) and for std / var (2), far from the prior in mean (3)."""
    if kind == 0:
        mu = torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.3 + 1.7 * torch.rand(B, k, generator=g, dtype=DTYPE)
    elif kind == 1:
        mu = 0.02 * torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.01 + 0.05 * torch.rand(B, k, generator=g, dtype=DTYPE)
    elif kind == 2:
        mu = 0.02 * torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.95 + 0.1 * torch.rand(B, k, generator=g, dtype=DTYPE)
    else:  # where non-Gaussian KLs (flows) part from the Gaussian one
        mu = 2.5 * torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.3 + 0.4 * torch.rand(B, k, generator=g, dtype=DTYPE)
    return mu, s


def layouts(
    D: int, input_shape: tuple[int, ...] | None, channels_last: bool = False
) -> list[tuple[int, ...]]:
    """The shapes of one sample to try: ``input_shape``, else flat, then a square image
    ([1, H, W], or [H, W, 1] for frameworks that put channels last). A ``C,H,W`` given for a
    channels-last framework is laid out as it takes images (``3,32,32`` -> ``32,32,3``).

    >>> layouts(784, None), layouts(10, None), layouts(784, None, channels_last=True)[1]
    ([(784,), (1, 28, 28)], [(10,)], (28, 28, 1))
    >>> layouts(3072, (3, 32, 32), channels_last=True), layouts(3072, (32, 32, 3), channels_last=True)
    ([(32, 32, 3)], [(32, 32, 3)])
    """
    if input_shape is not None:
        return [channels_last_order(input_shape) if channels_last else input_shape]
    out: list[tuple[int, ...]] = [(D,)]
    side = int(round(math.sqrt(D)))
    if side * side == D:
        out.append((side, side, 1) if channels_last else (1, side, side))
    return out


def channels_last_order(shape: tuple[int, ...]) -> tuple[int, ...]:
    """An image shape as a channels-last framework takes it: ``C,H,W`` (C of at most 4, H and W
    larger) becomes ``H,W,C``; any other shape is kept.

    >>> channels_last_order((1, 28, 28)), channels_last_order((28, 28, 1)), channels_last_order((784,))
    ((28, 28, 1), (28, 28, 1), (784,))
    """
    if len(shape) == 3 and shape[0] <= 4 < min(shape[1], shape[2]):
        return (shape[1], shape[2], shape[0])
    return shape


def resize(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """The shape with its width scaled (the data dim D scales with it): the last dim, or the
    one before the channels of a channels-last image ([H, W, C] with C of at most 4).

    >>> resize((1, 28, 28), 2.0), resize((28, 28, 1), 2.0), resize((784,), 0.5)
    ((1, 28, 56), (28, 56, 1), (392,))
    """
    axis = -2 if len(shape) == 3 and shape[-1] <= 4 < shape[0] else -1
    out = list(shape)
    out[axis] = max(1, round(shape[axis] * factor))
    return tuple(out)
