"""The audit's verdict: posterior collapse, an unregularised latent space, healthy, or diverged.

Rules (documented in the README and in every report):

* **diverged** when the model's training loss went non-finite (its metrics are not used);
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

__all__ = ["COLLAPSE_DIVERSITY", "UNREGULARISED_NATS_PER_DIM", "classify", "diverged"]

COLLAPSE_DIVERSITY = 0.1
UNREGULARISED_NATS_PER_DIM = 1.0


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
