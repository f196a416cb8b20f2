r"""How the audit recommends a beta (rules documented in the README and in every report).

1. **Best held-out likelihood**: among the sweep, the beta with the lowest IWAE NLL on
   held-out data.
2. **Per-dim collapse points**: in the linear model a dim with KL_j at beta_0 collapses at
   :math:`\beta_j^* = \beta_0 \exp(2\,\mathrm{KL}_j(\beta_0))`; sorted, they say "to keep m dims
   active, stay below beta_m". The audit checks how well this held on the sweep.
3. **Squared-error (Gaussian) losses**: beta and the decoder variance are one knob, so the
   recommendation calibrates it: the maximum-likelihood decoder variance of the trained model
   (sigma-VAE, Rybkin et al. 2021) is the beta relative to a unit-variance decoder.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["best_iwae", "collapse_points", "prediction_check"]


def best_iwae(sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep row with the lowest held-out IWAE NLL."""
    finite = [r for r in sweep if math.isfinite(r["iwae_nll"])]
    return min(finite, key=lambda r: r["iwae_nll"])


def collapse_points(beta0: float, kl_per_dim: list[float], *, min_kl: float = 0.01) -> list[float]:
    """Predicted collapse beta of each dim active at beta0, sorted from last to first to go.

    >>> [round(b, 9) for b in collapse_points(1.0, [0.5 * math.log(4), 0.0])]
    [4.0]
    """
    pts = [beta0 * math.exp(2 * kl) for kl in kl_per_dim if kl > min_kl]
    return sorted(pts, reverse=True)


def prediction_check(points: list[float], sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare predicted active counts (#points above beta) with measured active units."""
    rows = []
    for r in sweep:
        predicted = sum(p > r["beta_elbo"] for p in points)
        rows.append({"beta_elbo": r["beta_elbo"], "predicted": predicted, "measured": r["active_units"]})
    err = [abs(x["predicted"] - x["measured"]) for x in rows]
    return {"rows": rows, "mean_abs_error": sum(err) / max(1, len(err)), "exact": sum(e == 0 for e in err)}
