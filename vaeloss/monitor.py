"""``CollapseMonitor``: collapse metrics inside a user's own training loop."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vaeloss.metrics import ACTIVE_THRESHOLD, active_units, collapsed_dims, kl_per_dim, mutual_information
from vaeloss.validation import check_same_shape

__all__ = ["CollapseMonitor"]


class CollapseMonitor:
    """Accumulates posterior parameters over an epoch and summarises collapse.

    Call ``update(mu, logvar)`` per batch ([B, k] each, gradients are not kept) and
    ``summary()`` per epoch; ``reset()`` starts the next epoch (``summary(reset=True)`` does both).

    >>> mon = CollapseMonitor()
    >>> mon.update(torch.randn(64, 4), torch.zeros(64, 4))
    >>> s = mon.summary()
    >>> s["latent_dim"], s["active_units"]
    (4, 4)
    """

    def __init__(self, *, threshold: float = ACTIVE_THRESHOLD, max_points: int = 5000, seed: int = 0) -> None:
        self.threshold, self.max_points, self.seed = threshold, max_points, seed
        self._mu: list[Tensor] = []
        self._logvar: list[Tensor] = []

    def reset(self) -> None:
        self._mu, self._logvar = [], []

    def update(self, mu: Tensor, logvar: Tensor) -> None:
        check_same_shape("mu", mu, "logvar", logvar)
        self._mu.append(mu.detach().float().cpu().reshape(-1, mu.shape[-1]))
        self._logvar.append(logvar.detach().float().cpu().reshape(-1, mu.shape[-1]))

    def summary(self, *, reset: bool = False) -> dict[str, Any]:
        """active_units, au_variances, kl_per_dim, kl (total), collapsed_dims, mutual_information."""
        if not self._mu:
            return {}
        mu, logvar = torch.cat(self._mu), torch.cat(self._logvar)
        au = active_units(mu, threshold=self.threshold)
        kl = kl_per_dim(mu, logvar)
        n = min(mu.shape[0], self.max_points)
        g = torch.Generator().manual_seed(self.seed)
        out = {
            "latent_dim": int(mu.shape[1]),
            "active_units": au.number,
            "au_variances": au.variances.tolist(),
            "kl_per_dim": kl.tolist(),
            "kl": float(kl.sum()),
            "collapsed_dims": collapsed_dims(mu, logvar).tolist(),
            "mutual_information": mutual_information(mu[:n], logvar[:n], generator=g),
        }
        if reset:
            self.reset()
        return out
