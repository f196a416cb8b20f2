"""The probe's synthetic inputs: reconstructions and data [B, D], posterior means and scales
[B, k], in float64, from seeded generators; and the sample shapes a loss may take."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DTYPE", "SEED", "generator", "latent_inputs", "layouts", "recon_inputs", "resize"]

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


def layouts(D: int, input_shape: tuple[int, ...] | None) -> list[tuple[int, ...]]:
    """The shapes of one sample to try: ``input_shape``, else flat, then a square image.

    >>> layouts(784, None), layouts(10, None)
    ([(784,), (1, 28, 28)], [(10,)])
    """
    if input_shape is not None:
        return [input_shape]
    out: list[tuple[int, ...]] = [(D,)]
    side = int(round(math.sqrt(D)))
    if side * side == D:
        out.append((1, side, side))
    return out


def resize(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """The shape with its last dim scaled (the data dim D scales with it).

    >>> resize((1, 28, 28), 2.0)
    (1, 28, 56)
    """
    return (*shape[:-1], max(1, round(shape[-1] * factor)))
