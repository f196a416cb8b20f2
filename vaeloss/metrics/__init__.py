"""Posterior-collapse metrics: pure functions of one model's posteriors and decoder, the one
collapse summary type, and a mergeable monitor for a user's own training loop.

* :mod:`~vaeloss.metrics.posterior`: active units, KL per dim, (eps, delta)-collapse, mutual
  information, the aggregate posterior's KL, the marginal KL;
* :mod:`~vaeloss.metrics.iwae`: the IWAE bound and its Monte-Carlo error;
* :mod:`~vaeloss.metrics.outputs`: output diversity and latent usage;
* :mod:`~vaeloss.metrics.summary`: :class:`CollapseSummary`, :func:`summarize`;
* :mod:`~vaeloss.metrics.monitor`: :class:`CollapseMonitor`.

Shapes: ``mu``, ``logvar`` are [N, k] (N data points, k latent dims); ``x`` is [N, D]. Every
value is in nats unless it is a count or a ratio.
"""

from vaeloss.metrics.iwae import IWAEBound, iwae_bound, iwae_log_weights, iwae_nll
from vaeloss.metrics.monitor import CollapseMonitor, MonitorState
from vaeloss.metrics.outputs import latent_usage, latent_usage_from, output_diversity
from vaeloss.metrics.posterior import (
    ACTIVE_THRESHOLD,
    COLLAPSE_DELTA,
    COLLAPSE_EPS,
    ActiveUnits,
    active_units,
    aggregate_kl,
    collapsed_dims,
    gaussian_kl_to_prior,
    kl_per_dim,
    marginal_kl,
    mutual_information,
)
from vaeloss.metrics.summary import CollapseSummary, summarize

__all__ = [
    "ACTIVE_THRESHOLD",
    "COLLAPSE_DELTA",
    "COLLAPSE_EPS",
    "ActiveUnits",
    "CollapseMonitor",
    "CollapseSummary",
    "IWAEBound",
    "MonitorState",
    "active_units",
    "aggregate_kl",
    "collapsed_dims",
    "gaussian_kl_to_prior",
    "iwae_bound",
    "iwae_log_weights",
    "iwae_nll",
    "kl_per_dim",
    "latent_usage",
    "latent_usage_from",
    "marginal_kl",
    "mutual_information",
    "output_diversity",
    "summarize",
]
