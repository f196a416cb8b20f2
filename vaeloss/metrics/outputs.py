"""Whether the decoder's outputs depend on the input and on z: pure functions of decoded
outputs [N, D] (ratios: near 0 means every input gives the same output)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vaeloss.validation import check_same_shape

__all__ = ["latent_usage", "latent_usage_from", "output_diversity"]


def _subsample(n: int, max_points: int, generator: torch.Generator | None) -> Tensor | None:
    """Row indices of a random subset of at most ``max_points`` rows (None: all rows)."""
    return torch.randperm(n, generator=generator)[:max_points] if n > max_points else None


def _mean_pairwise(a: Tensor, idx: Tensor | None = None) -> Tensor:
    """Mean Euclidean distance between distinct rows of ``a`` [N, ...] (or rows ``idx``)."""
    if idx is not None:
        a = a[idx.to(a.device)]
    flat = a.reshape(a.shape[0], -1)
    d = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
    n = a.shape[0]
    return d.sum() / max(1, n * (n - 1))


def output_diversity(
    recon: Tensor, x: Tensor, *, max_points: int = 500, generator: torch.Generator | None = None
) -> float:
    """Mean pairwise distance between reconstructions of different inputs, relative to that
    between the inputs (the same rows for both). Near 0: every input gives the same output.

    >>> output_diversity(torch.ones(4, 3), torch.eye(4, 3))
    0.0
    """
    check_same_shape("recon", recon, "x", x)
    idx = _subsample(x.shape[0], max_points, generator)
    num, den = _mean_pairwise(recon, idx), _mean_pairwise(x, idx)
    return float(num / den) if float(den) > 0 else 0.0


def latent_usage(
    decode: Callable[[Tensor], Tensor],
    mu: Tensor,
    x: Tensor,
    *,
    generator: torch.Generator | None = None,
) -> float:
    """How much reconstructions change when the posterior mean is replaced by a prior sample:
    ``mean ||dec(mu(x)) - dec(z~p)|| / mean ||x_i - x_j||``. Near 0: the decoder ignores z.
    """
    z = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return latent_usage_from(decode(mu), decode(z), x)


def latent_usage_from(recon_at_mean: Tensor, recon_at_prior: Tensor, x: Tensor) -> float:
    """:func:`latent_usage` from decoded outputs ``dec(mu(x))`` and ``dec(z ~ p)`` [N, D] and the
    data x [N, D].

    >>> latent_usage_from(torch.ones(3, 2), torch.ones(3, 2), torch.eye(3, 2))
    0.0
    """
    diff = (recon_at_mean - recon_at_prior).reshape(x.shape[0], -1).norm(dim=-1).mean()
    den = _mean_pairwise(x, _subsample(x.shape[0], 500, None))
    return float(diff / den) if float(den) > 0 else 0.0
