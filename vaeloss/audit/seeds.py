"""Several seeds per beta (``--seeds N``): each beta's metrics as a mean and a spread across its
seeds, so that the recommendation can say when two betas differ by less than the noise.

For a metric measured at seeds :math:`x_1 \\dots x_n` of one beta: the mean, the sample
standard deviation :math:`s = \\sqrt{\\sum (x_i - \\bar x)^2 / (n - 1)}` (the spread of one
training run around the others), and the standard error of the mean :math:`s / \\sqrt n` (how
well the mean is known; what comparing two betas' means needs). A beta with one measured seed
has no spread (None). Rows that diverged carry no metrics and are left out (``n`` counts those
measured).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vaeloss.jsontypes import JsonObject

if TYPE_CHECKING:  # the rows' type only: result.py reads this module's spreads
    from vaeloss.audit.result import SweepRow

__all__ = ["METRICS", "BetaSpread", "Spread", "spreads", "within_noise"]

METRICS = ("active_units", "kl", "recon", "mutual_information", "iwae_nll")
"""The metrics summarised across seeds (nats per sample, but the active units: a count)."""


@dataclass(frozen=True)
class Spread:
    """One metric across the seeds of a beta.

    >>> s = Spread.of([1.0, 2.0, 3.0])
    >>> s.mean, s.std, round(s.se, 4)
    (2.0, 1.0, 0.5774)
    """

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(
            statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values)
        )

    @property
    def se(self) -> float | None:
        """The standard error of the mean (None with one seed)."""
        return None if self.std is None else self.std / math.sqrt(self.n)

    def to_json(self) -> JsonObject:
        return {"mean": self.mean, "std": self.std, "se": self.se, "n": self.n}


@dataclass(frozen=True)
class BetaSpread:
    """A beta of the sweep across its seeds: its rows' positions in the sweep, and each of
    :data:`METRICS` (absent when no seed measured it)."""

    kl_weight: float
    elbo_beta: float
    rows: tuple[int, ...]
    metrics: dict[str, Spread]

    def to_json(self) -> JsonObject:
        return {
            "beta_own": self.kl_weight,
            "beta_elbo": self.elbo_beta,
            "seeds": len(self.rows),
            **{name: s.to_json() for name, s in self.metrics.items()},
        }


def spreads(sweep: list[SweepRow]) -> list[BetaSpread]:
    """Each beta of ``sweep`` (rows of one beta share its ELBO beta), in the sweep's order."""
    positions: dict[float, list[int]] = {}
    for i, row in enumerate(sweep):
        positions.setdefault(row.elbo_beta, []).append(i)
    out = []
    for beta, rows in positions.items():
        measured = [sweep[i].metrics for i in rows if sweep[i].metrics is not None]
        metrics = {}
        for name in METRICS:
            values = [float(v) for m in measured if (v := getattr(m, name)) is not None and math.isfinite(v)]
            if values:
                metrics[name] = Spread.of(values)
        out.append(BetaSpread(sweep[rows[0]].kl_weight, beta, tuple(rows), metrics))
    return out


def within_noise(a: Spread, b: Spread) -> bool:
    """Whether two betas' means differ by less than the noise of their difference: one
    standard error of it, :math:`\\sqrt{se_a^2 + se_b^2}` (False when either has one seed).

    >>> within_noise(Spread(10.0, 0.4, 4), Spread(10.25, 0.4, 4))  # 0.25 < hypot(0.2, 0.2)
    True
    """
    if a.se is None or b.se is None:
        return False
    return abs(a.mean - b.mean) <= math.hypot(a.se, b.se)
