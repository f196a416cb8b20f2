"""The collapse summary of one model's posteriors: one type for the audit's evaluation, the
collapse monitor and the callbacks (nats per sample unless a count or a ratio)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vaeloss.jsontypes import JsonObject
from vaeloss.metrics.posterior import (
    ACTIVE_THRESHOLD,
    active_units,
    aggregate_kl,
    collapsed_dims,
    kl_per_dim,
    marginal_kl,
    mutual_information,
)

__all__ = ["PREFIX", "CollapseSummary", "as_tensor", "summarize"]

PREFIX = "collapse/"
"""The start of the names the callbacks log (``collapse/active_units``...)."""


@dataclass(frozen=True, kw_only=True)
class CollapseSummary:
    """What a model's posteriors say about collapse.

    Attributes:
        kl: KL to the prior, summed over latent dims, mean over rows; kl_per_dim: per dim [k].
        active_units: dims with Var_x E[z_j] above the threshold; au_variances: those variances [k].
        collapsed_dims: number of (eps, delta)-collapsed dims (Lucas et al. 2019).
        mutual_information: I(x; z) (He et al. 2019 estimator, at most log N).
        marginal_kl: ``kl - mutual_information`` (Hoffman & Johnson 2016).
        aggregate_kl: KL of the aggregate posterior's moment-matched Gaussian to N(0, I).
        rows: the rows summarised (the mutual information may use a sample of them).
    """

    kl: float
    kl_per_dim: list[float]
    active_units: int
    au_variances: list[float]
    collapsed_dims: int
    mutual_information: float
    marginal_kl: float
    aggregate_kl: float
    rows: int = 0

    @property
    def latent_dim(self) -> int:
        return len(self.kl_per_dim)

    @property
    def posterior_collapsed(self) -> bool:
        """No latent dim is active: the posterior is the prior for every input."""
        return self.active_units == 0

    def __str__(self) -> str:
        """For people (``print(monitor.summary())``): whether it collapsed, then the numbers.

        >>> mu = torch.tensor([[0.0, 5.0], [0.0, -5.0]])
        >>> print(summarize(mu, torch.zeros(2, 2), generator=torch.Generator().manual_seed(0)))
        collapse summary of 2 rows: 1 of 2 latent dims active (not collapsed)
          KL to the prior: 12.5 nats per sample; by dim: z0 0, z1 12.5
          mutual information I(x; z): 0.6931 nats (at most log N = 0.6931)
          collapsed dims: 1 of 2; marginal KL: 11.81; aggregate KL: 10.87
        """
        state = "posterior collapse" if self.posterior_collapsed else "not collapsed"
        dims = sorted(enumerate(self.kl_per_dim), key=lambda d: -d[1])[:8]
        shown = ", ".join(f"z{j} {v:.4g}" for j, v in sorted(dims))
        more = f" (the {len(dims)} largest of {self.latent_dim})" if self.latent_dim > len(dims) else ""
        log_n = f" (at most log N = {math.log(self.rows):.4g})" if self.rows > 0 else ""
        return (
            f"collapse summary of {self.rows} rows: {self.active_units} of {self.latent_dim} latent dims "
            f"active ({state})\n"
            f"  KL to the prior: {self.kl:.4g} nats per sample; by dim{more}: {shown}\n"
            f"  mutual information I(x; z): {self.mutual_information:.4g} nats{log_n}\n"
            f"  collapsed dims: {self.collapsed_dims} of {self.latent_dim}; marginal KL: "
            f"{self.marginal_kl:.4g}; aggregate KL: {self.aggregate_kl:.4g}"
        )

    def to_json(self) -> JsonObject:
        out: JsonObject = asdict(self)
        return out

    def scalars(self, prefix: str = PREFIX) -> dict[str, float]:
        """The numbers a training logger records (the one home of their names): active units,
        KL (nats per sample), mutual information, whether collapsed (1.0 or 0.0) and each dim's
        KL as ``collapse/kl_dim/z00``...

        >>> s = summarize(torch.tensor([[0.0, 1.0], [0.0, -1.0]]), torch.zeros(2, 2))
        >>> sorted(s.scalars())[:3], s.scalars()["collapse/kl_dim/z01"]
        (['collapse/active_units', 'collapse/collapsed', 'collapse/kl'], 0.5)
        """
        width = max(2, len(str(self.latent_dim - 1)))
        out = {
            f"{prefix}active_units": float(self.active_units),
            f"{prefix}kl": self.kl,
            f"{prefix}mi": self.mutual_information,
            f"{prefix}collapsed": 1.0 if self.posterior_collapsed else 0.0,
        }
        out.update({f"{prefix}kl_dim/z{j:0{width}d}": v for j, v in enumerate(self.kl_per_dim)})
        return out


def as_tensor(value: Any) -> Tensor:
    """A tensor of ``value``: a tensor as it is; a NumPy array, or a Keras, JAX or TensorFlow
    array (through NumPy), as float64.

    >>> as_tensor(np.zeros((2, 3), dtype=np.float32)).dtype
    torch.float64
    """
    if isinstance(value, Tensor):
        return value
    return torch.from_numpy(np.array(value, dtype=np.float64))


def summarize(
    mu: Tensor,
    logvar: Tensor,
    *,
    generator: torch.Generator | None = None,
    threshold: float = ACTIVE_THRESHOLD,
) -> CollapseSummary:
    """The collapse summary of posteriors ``mu``, ``logvar`` [N, k], every metric on every row.

    >>> s = summarize(torch.tensor([[0.0, 1.0], [0.0, -1.0]]), torch.zeros(2, 2))
    >>> s.active_units, s.latent_dim, round(s.kl, 3)
    (1, 2, 0.5)

    NumPy arrays (and Keras, JAX, TensorFlow arrays) are taken too (:func:`as_tensor`).
    """
    mu, logvar = as_tensor(mu), as_tensor(logvar)
    kl_d = kl_per_dim(mu, logvar)
    kl = float(kl_d.sum())
    mi = mutual_information(mu, logvar, generator=generator)
    au = active_units(mu, threshold=threshold)
    return CollapseSummary(
        kl=kl,
        kl_per_dim=kl_d.tolist(),
        active_units=au.number,
        au_variances=au.variances.tolist(),
        collapsed_dims=int(collapsed_dims(mu, logvar).sum()),
        mutual_information=mi,
        marginal_kl=marginal_kl(kl, mi),
        aggregate_kl=aggregate_kl(mu, logvar),
        rows=int(mu.shape[0]),
    )
