r"""``CollapseMonitor``: collapse metrics inside a user's own training loop, in bounded memory,
mergeable across processes (a callback reduces it over DDP ranks).

Its state is sums and moments over all rows seen, exact whatever their number: the count,
mean and co-moment matrix of the posterior means (merged by Chan et al.'s parallel formula,
stable in float64), the sums of each dim's KL and posterior variance, and the count of rows
with each dim's KL under :data:`~vaeloss.metrics.posterior.COLLAPSE_EPS`. The mutual
information needs rows themselves: a uniform sample of at most ``max_points`` of them is kept
as a bottom-k sketch (each row gets a random key; the rows with the smallest keys are kept),
which two monitors merge exactly into a uniform sample of their union.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from vaeloss.metrics.posterior import (
    ACTIVE_THRESHOLD,
    COLLAPSE_DELTA,
    COLLAPSE_EPS,
    gaussian_kl_to_prior,
    marginal_kl,
    mutual_information,
)
from vaeloss.metrics.summary import PREFIX, CollapseSummary, as_tensor
from vaeloss.objective.kl import kl_normal
from vaeloss.validation import check_same_shape

__all__ = ["CollapseMonitor", "MonitorState", "ScalarWriter"]


class ScalarWriter(Protocol):
    """What :meth:`CollapseMonitor.log_to` writes to (torch's ``SummaryWriter`` has it)."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> Any: ...


@dataclass
class MonitorState:
    """The mergeable state of a :class:`CollapseMonitor` (float64 tensors; ``k`` latent dims).

    Attributes:
        n: rows seen; mean [k] and comoment [k, k]: of the posterior means.
        kl_sum [k], var_sum [k]: sums over rows of each dim's KL and posterior variance.
        small_kl [k]: rows whose KL in the dim is under ``COLLAPSE_EPS``.
        keys [m], mu [m, k], logvar [m, k]: the sampled rows and their random keys.
    """

    n: int
    mean: Tensor
    comoment: Tensor
    kl_sum: Tensor
    var_sum: Tensor
    small_kl: Tensor
    keys: Tensor
    mu: Tensor
    logvar: Tensor

    def merged(self, other: MonitorState, max_points: int) -> MonitorState:
        """The state of both monitors' rows together."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        comoment = self.comoment + other.comoment + torch.outer(delta, delta) * (self.n * other.n / n)
        keys = torch.cat([self.keys, other.keys])
        keep = torch.argsort(keys)[:max_points]
        return MonitorState(
            n,
            mean,
            comoment,
            self.kl_sum + other.kl_sum,
            self.var_sum + other.var_sum,
            self.small_kl + other.small_kl,
            keys[keep],
            torch.cat([self.mu, other.mu])[keep],
            torch.cat([self.logvar, other.logvar])[keep],
        )


class CollapseMonitor:
    """Accumulates posterior parameters over an epoch and summarises collapse.

    Call ``update(mu, logvar)`` per batch ([B, k] each, or [..., k]; gradients are not kept)
    and ``summary()`` per epoch; ``reset()`` starts the next epoch (``summary(reset=True)`` does
    both). ``merge(other)`` adds another monitor's rows (another process's, under DDP).

    >>> mon = CollapseMonitor()
    >>> mon.update(torch.randn(64, 4), torch.zeros(64, 4))
    >>> s = mon.summary()
    >>> s.latent_dim, s.active_units, s.rows
    (4, 4, 64)
    """

    def __init__(self, *, threshold: float = ACTIVE_THRESHOLD, max_points: int = 5000, seed: int = 0) -> None:
        self.threshold, self.max_points, self.seed = threshold, max_points, seed
        self._generator = torch.Generator().manual_seed(seed)
        self.state: MonitorState | None = None

    def reset(self) -> None:
        self.state = None

    def update(self, mu: Tensor, logvar: Tensor) -> None:
        mu, logvar = as_tensor(mu), as_tensor(logvar)  # NumPy, Keras, JAX arrays too
        check_same_shape("mu", mu, "logvar", logvar)
        m = mu.detach().to("cpu", torch.float64).reshape(-1, mu.shape[-1])
        lv = logvar.detach().to("cpu", torch.float64).reshape(-1, mu.shape[-1])
        if m.shape[0] == 0:
            return
        kl = kl_normal(m, lv)
        mean = m.mean(0)
        centred = m - mean
        batch = MonitorState(
            m.shape[0],
            mean,
            centred.T @ centred,
            kl.sum(0),
            lv.exp().sum(0),
            (kl < COLLAPSE_EPS).double().sum(0),
            torch.rand(m.shape[0], generator=self._generator, dtype=torch.float64),
            m,
            lv,
        )
        keep = torch.argsort(batch.keys)[: self.max_points]
        batch.keys, batch.mu, batch.logvar = batch.keys[keep], m[keep], lv[keep]
        self.state = batch if self.state is None else self.state.merged(batch, self.max_points)

    def merge(self, other: CollapseMonitor) -> None:
        """Add the rows ``other`` has seen (it is left as it is)."""
        if other.state is None:
            return
        self.state = other.state if self.state is None else self.state.merged(other.state, self.max_points)

    def summary(self, *, reset: bool = False) -> CollapseSummary | None:
        """The collapse summary of every row seen (None before the first ``update``): active
        units, KL per dim, collapsed dims and the aggregate posterior's KL exactly, the mutual
        information on the sampled rows."""
        st = self.state
        if st is None:
            return None
        n = st.n
        variances = torch.diagonal(st.comoment) / n
        kl_per_dim = st.kl_sum / n
        kl = float(kl_per_dim.sum())
        cov = st.comoment / n + torch.diag(st.var_sum / n)
        # the sampled rows in an order of their own values, not of their arrival: the same rows give
        # the same estimate however they were split across batches or processes
        order = torch.from_numpy(np.lexsort(st.mu.numpy().T[::-1]).copy())
        generator = torch.Generator().manual_seed(self.seed)
        mi = mutual_information(st.mu[order], st.logvar[order], generator=generator)
        out = CollapseSummary(
            kl=kl,
            kl_per_dim=kl_per_dim.tolist(),
            active_units=int((variances > self.threshold).sum()),
            au_variances=variances.tolist(),
            collapsed_dims=int((st.small_kl / n >= 1 - COLLAPSE_DELTA).sum()),
            mutual_information=mi,
            marginal_kl=marginal_kl(kl, mi),
            aggregate_kl=gaussian_kl_to_prior(st.mean, cov),
            rows=n,
        )
        if reset:
            self.reset()
        return out

    def log_to(self, writer: ScalarWriter, step: int, *, prefix: str = PREFIX) -> CollapseSummary | None:
        """Write the summary's scalars (:meth:`CollapseSummary.scalars`) to ``writer``, anything
        with ``add_scalar(tag, value, step)`` (torch's ``SummaryWriter``, tensorboardX); the
        summary (None, and nothing written, before the first ``update``)."""
        summary = self.summary()
        if summary is not None:
            for tag, value in summary.scalars(prefix).items():
                writer.add_scalar(tag, value, step)
        return summary
