"""The audit's verdict: posterior collapse, an unregularised latent space, healthy, diverged,
or too early to tell.

Rules (documented in the README and in every report):

* **diverged** when the model's training loss went non-finite (its metrics are not used);
* **too early to tell** when the model did not converge and either trained no more than one
  window of the plateau rule (so its progress was never measured) or its loss was still
  falling fast: the last window brought more than :data:`TOO_EARLY_RELATIVE` of all its
  improvement since the first epoch. Its numbers are shown, but judged by no rule below;
* **posterior collapse** when no latent dim is active, or reconstructions of different inputs
  are nearly identical (output diversity < 0.1);
* **unregularised latent space** when the aggregate posterior is far from the prior: its
  moment-matched Gaussian KL to N(0, I) exceeds 1 nat per latent dim on average. (The marginal
  KL = total KL - MI of Hoffman & Johnson (2016) is reported too; its MI estimate is capped at
  log N, so it is an upper bound when the KL is large.)
* otherwise **healthy**, with the number of unused dims noted.
"""

from __future__ import annotations

from vaeloss.audit.result import Divergence, Verdict
from vaeloss.engine.evaluate import ModelMetrics
from vaeloss.engine.states import ModelStatus

__all__ = [
    "COLLAPSE_DIVERSITY",
    "TOO_EARLY_RELATIVE",
    "UNREGULARISED_NATS_PER_DIM",
    "classify",
    "diverged",
    "too_early",
    "too_early_reason",
]

COLLAPSE_DIVERSITY = 0.1
UNREGULARISED_NATS_PER_DIM = 1.0
TOO_EARLY_RELATIVE = 0.05
"""A model whose last plateau window brought more than this share of all its improvement is
still falling fast: too early to judge."""


def too_early_reason(status: ModelStatus | None) -> str | None:
    """Why a model's training ended too early for a verdict (None: it can be judged).

    >>> st = ModelStatus(False, 1, 1, None, 3e-3, "time limit", window=5)
    >>> too_early_reason(st).split(", ")[0]
    'the time limit ended its training after 1 epoch'
    """
    if status is None or status.converged or status.reason == "diverged":
        return None
    why = {
        "time limit": "the time limit ended its training",
        "epoch limit": "the epoch limit ended its training",
        "interrupted": "its training was interrupted",
    }.get(status.reason, "its training ended")
    epochs = f"{status.epochs} epoch{'s' if status.epochs != 1 else ''}"
    if status.last_relative is None:
        return (
            f"{why} after {epochs}, before its progress could be measured (a verdict needs more "
            f"than {status.window} epochs)"
        )
    if status.last_relative > TOO_EARLY_RELATIVE:
        return (
            f"{why} after {epochs} while its loss was still falling fast (its last {status.window} "
            f"epochs brought {status.last_relative:.0%} of all its improvement; a verdict needs "
            f"under {TOO_EARLY_RELATIVE:.0%})"
        )
    return None


def too_early(reason: str, m: ModelMetrics | None, latent_dim: int) -> Verdict:
    """The verdict on a model stopped too early to judge: what was measured, but no verdict."""
    seen = "" if m is None else f"; so far {m.active_units} of {latent_dim} latent dims active, KL {m.kl:.3g}"
    return Verdict("too early to tell", False, f"too early to tell: {reason}{seen}{' nats' if seen else ''}")


def elsewhere(shard: str) -> Verdict:
    """The verdict on a model another shard trains (``--shard I/N``)."""
    return Verdict(
        "not measured", False, f"not measured here: {shard} trains it (vaeloss merge joins the shards)"
    )


def lost(reason: str) -> Verdict:
    """The verdict on a model whose group never came back (its worker died twice)."""
    return Verdict("lost", False, f"lost: {reason}; nothing was measured")


def diverged(d: Divergence) -> Verdict:
    """The verdict on a model whose loss went non-finite."""
    return Verdict(
        "diverged",
        False,
        f"diverged: the training loss went non-finite in the {d.term} term at step {d.step} "
        f"(epoch {d.epoch}); its metrics are not used",
    )


def classify(m: ModelMetrics, latent_dim: int) -> Verdict:
    """The verdict and its one-line headline for one model's metrics."""
    au, div = m.active_units, m.output_diversity
    if au == 0 or (div is not None and div < COLLAPSE_DIVERSITY):
        same = (
            ""
            if div is None
            else f"reconstructions of different inputs are {100 * max(0.0, 1 - div):.1f}% identical"
        )
        if au == 0:
            line = f"posterior collapse: 0 of {latent_dim} latent dims active" + (f"; {same}" if same else "")
        else:  # the encoder uses its dims but the decoder's outputs barely depend on them
            line = (
                f"posterior collapse: {same} although {au} of {latent_dim} latent dims are active "
                f"(the decoder barely uses them)"
            )
        return Verdict("posterior collapse", True, line)
    agg = m.aggregate_kl
    if agg > UNREGULARISED_NATS_PER_DIM * latent_dim:
        return Verdict(
            "unregularised latent space",
            False,
            f"unregularised latent space: the aggregate posterior is {agg:.1f} nats from the "
            f"prior (marginal KL {m.marginal_kl:.1f} nats), so samples from the prior are "
            f"poor; {au} of {latent_dim} dims active",
        )
    unused = latent_dim - au
    tail = f"; {unused} unused" if unused else ""
    return Verdict(
        "healthy",
        False,
        f"healthy: {au} of {latent_dim} latent dims active{tail}; KL {m.kl:.2f} nats, "
        f"aggregate posterior {agg:.2f} nats from the prior",
    )
