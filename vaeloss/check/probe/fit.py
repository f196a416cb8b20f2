r"""The fit itself, pure: numbers in, :class:`~vaeloss.check.result.ElementFit` out.

For one value the loss returns, the changes :math:`\Delta L` it showed when only the
reconstruction side changed are fitted as :math:`a\,\Delta N_h` for each likelihood hypothesis
:math:`h`, and the changes when only the latent side changed as :math:`b\,\Delta K_p` for each
parameterisation :math:`p`, by least squares through the origin; the best of each is kept
with its relative residual, and :math:`c = L_0 - a N_0 - b K_0`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vaeloss.check.result import ElementFit, rounding_floor

if TYPE_CHECKING:
    from vaeloss.objective.kl import LatentParameterisation
    from vaeloss.objective.likelihoods import DecoderOutput, Likelihood

__all__ = ["Hypothesis", "Observations", "fit_element", "fit_slope", "mean", "standard_errors"]

Hypothesis = tuple["Likelihood", "DecoderOutput"]
"""A reconstruction hypothesis: a likelihood and what the loss reads the reconstruction as."""


ABSENT = 1e-12
"""A term whose changes are below this fraction of the loss's value is absent (float64 keeps 16
digits: a term at 1e-12 has about 4 left, too few to fit; above it, see ``ROUNDING_FACTOR``)."""


def fit_slope(dl: Sequence[float], dn: Sequence[float], scale: float) -> tuple[float, float]:
    """Least-squares slope through the origin of ``dl`` on ``dn`` and its relative residual
    (0 and 0 when the term is absent: ``dl`` is nothing next to ``scale``).

    >>> fit_slope([2.0, 4.0], [1.0, 2.0], 10.0)
    (2.0, 0.0)
    >>> fit_slope([0.0, 0.0], [1.0, 2.0], 10.0)
    (0.0, 0.0)
    """
    size = math.sqrt(sum(a * a for a in dl))
    if size <= ABSENT * scale:  # relative: a loss divided by a data set's size is small, not absent
        return 0.0, 0.0
    den = sum(b * b for b in dn)
    if den == 0:
        return 0.0, math.inf
    slope = sum(a * b for a, b in zip(dl, dn)) / den
    res = math.sqrt(sum((a - slope * b) ** 2 for a, b in zip(dl, dn)))
    return slope, res / size


def mean(draws: Sequence[Sequence[float]]) -> list[float]:
    """The mean of each value over draws (one vector per draw)."""
    return [sum(col) / len(draws) for col in zip(*draws)]


def standard_errors(draws: Sequence[Sequence[float]]) -> list[float]:
    """Per value, the standard error of the mean of ``draws`` (0 for a single draw).

    >>> standard_errors([[1.0], [3.0]])
    [1.0]
    """
    n = len(draws)
    if n < 2:
        return [0.0] * len(draws[0])
    out = []
    for col in zip(*draws):
        m = sum(col) / n
        out.append(math.sqrt(sum((v - m) ** 2 for v in col) / (n - 1) / n))
    return out


@dataclass(frozen=True)
class Observations:
    """What one value of the loss did at one set of sizes.

    Attributes:
        base: its value at the base inputs.
        recon: its changes when only the reconstruction side changed (one per probe).
        latent: its changes when only the latent side changed; latent_se: their standard
            errors (Monte-Carlo; 0 for a deterministic loss).
        monte_carlo: the values are averages over seeds.
        resolution: the relative rounding of the framework's arithmetic when coarser than
            float64 (0; Keras on torch reduces in float32: 2^-23).
    """

    base: float
    recon: Sequence[float]
    latent: Sequence[float]
    latent_se: Sequence[float]
    monte_carlo: bool = False
    resolution: float = 0.0


def fit_element(
    obs: Observations,
    recon_refs: Mapping[Hypothesis, tuple[float, Sequence[float]]],
    kl_refs: Mapping[LatentParameterisation, tuple[float, Sequence[float]]],
) -> ElementFit:
    """The fit of one value (the best reconstruction hypothesis and KL parameterisation), from
    its observations and each reference's base value and changes at the same inputs
    (``recon_refs`` keyed by (likelihood, decoder output), ``kl_refs`` by parameterisation).

    The Monte-Carlo z-score is the largest misfit of a latent probe in standard errors of its
    average (a KL that is no Gaussian KL is a few standard errors off).
    """
    scale = max([abs(obs.base)] + [abs(v) for v in [*obs.recon, *obs.latent]])
    recon_fits = {h: fit_slope(obs.recon, ref[1], scale) for h, ref in recon_refs.items()}
    kl_fits = {p: fit_slope(obs.latent, ref[1], scale) for p, ref in kl_refs.items()}
    best_r = min(recon_fits, key=lambda h: recon_fits[h][1])
    best_k = min(kl_fits, key=lambda p: kl_fits[p][1])
    a, res_a = recon_fits[best_r]
    b, res_b = kl_fits[best_k]
    c = obs.base - a * recon_refs[best_r][0] - b * kl_refs[best_k][0]
    zscore = 0.0
    if obs.monte_carlo:
        floor = max(1e-12 * scale, 1e-300)
        changes = kl_refs[best_k][1]
        zscore = max(abs(v - b * d) / max(se, floor) for v, d, se in zip(obs.latent, changes, obs.latent_se))
    return ElementFit(
        best_r[0] if a else None,
        best_r[1] if a else None,
        a,
        res_a,
        best_k if b else None,
        b,
        res_b,
        c,
        abs(c) / max(scale, 1e-12),
        recon_alternatives={f"{h[0]}/{h[1]}": v[1] for h, v in recon_fits.items()},
        monte_carlo=obs.monte_carlo,
        kl_zscore=zscore,
        resolution=obs.resolution,
        recon_rounding=_rounding(obs.recon, scale, obs.resolution) if a else 0.0,
        kl_rounding=_rounding(obs.latent, scale, obs.resolution) if b else 0.0,
    )


def _rounding(changes: Sequence[float], scale: float, resolution: float) -> float:
    """The relative misfit rounding alone can give a term measured by ``changes`` of a loss of
    magnitude ``scale`` (:data:`~vaeloss.check.result.ROUNDING_FACTOR`).

    >>> round(_rounding([1e-3, 2e-3], 1e7, 0.0) / rounding_floor(0.0) * 2.0**-52, 9)
    1.404e-06
    """
    size = math.sqrt(sum(v * v for v in changes))
    if size == 0:
        return 0.0
    return rounding_floor(resolution) * scale * math.sqrt(len(changes)) / size
