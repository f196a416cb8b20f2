r"""How the audit recommends a beta (rules documented in the README and in every report).

1. **Best held-out likelihood**: among the models of the sweep that neither diverged nor
   collapsed, the beta with the lowest IWAE NLL on held-out data. When every model collapsed,
   the lowest beta is named, with the caveat that the sweep needs lower betas.
2. **Per-dim collapse points**: in the linear model a dim with KL_j at beta_0 collapses at
   :math:`\beta_j^* = \beta_0 \exp(2\,\mathrm{KL}_j(\beta_0))`; sorted, they say "to keep m dims
   active, stay below beta_m". The audit checks how well this held on the sweep.
3. **Squared-error (Gaussian) losses**: beta and the decoder variance are one knob, so the
   recommendation calibrates it: the maximum-likelihood decoder variance of the trained model
   (sigma-VAE, Rybkin et al. 2021) is the beta relative to a unit-variance decoder.
"""

from __future__ import annotations

import math

from vaeloss.audit.calibrate import Calibration
from vaeloss.audit.result import AuditObjective, CollapsePoints, PredictionCheck, Recommendation, SweepRow
from vaeloss.audit.seeds import spreads, within_noise
from vaeloss.objective.algebra import Monomial, as_fraction

__all__ = [
    "batch_formula",
    "best_iwae",
    "best_mean_iwae",
    "by_calibration",
    "collapse_points",
    "predicted_collapse",
    "prediction_check",
]


def batch_formula(objective: AuditObjective, elbo_beta: float, sizes: dict[str, int]) -> str | None:
    """The KL weight giving ``elbo_beta`` as a formula in the batch size B (the data and latent
    dims put in), when it depends on B; None when it does not.

    >>> from vaeloss.objective.presets import get_convention
    >>> obj = AuditObjective(get_convention("size_average"), "size_average", 1.0)
    >>> batch_formula(obj, 1.0, {"B": 64, "D": 64, "k": 8})
    '1/(64*B)'
    """
    per_elbo = objective.convention.kl_weight_for_elbo_monomial
    if per_elbo.B == 0:
        return None
    at_b1 = per_elbo.evaluate(B=1, D=sizes["D"], k=sizes["k"]) * elbo_beta
    return Monomial(as_fraction(float(f"{at_b1:.6g}")), B=per_elbo.B).formula()


def _caveat(row: SweepRow, latent_dim: int) -> str:
    m = row.metrics
    if m is not None and m.active_units == 0:
        return f"; note: at this beta 0 of {latent_dim} dims are active (collapse)"
    return ""


def _se(row: SweepRow) -> str:
    m = row.metrics
    return "" if m is None or m.iwae_se is None else f" ± {m.iwae_se:.2g}"


def _iwae(row: SweepRow) -> float:
    m = row.metrics
    return math.inf if m is None or m.iwae_nll is None else m.iwae_nll


def best_iwae(
    sweep: list[SweepRow], objective: AuditObjective, sizes: dict[str, int], iwae_samples: int
) -> Recommendation | None:
    """The sweep row with the lowest held-out IWAE NLL among the healthy-enough ones (None when
    no row that can be judged has an IWAE figure: every model diverged or stopped too early to
    tell, or the evaluation was interrupted; and when every judged row collapsed while others
    stopped too early to tell whether they do)."""
    k = sizes["k"]
    measured = [
        (i, r)
        for i, r in enumerate(sweep)
        if math.isfinite(_iwae(r)) and r.verdict.name != "too early to tell"
    ]
    if not measured:
        return None
    usable = [(i, r) for i, r in measured if not r.verdict.collapsed]
    if usable:
        i, best = min(usable, key=lambda ir: _iwae(ir[1]))
        m = best.metrics
        assert m is not None
        overall = min(measured, key=lambda ir: _iwae(ir[1]))
        skipped = ""
        if overall[0] != i:
            skipped = (
                f"; the lowest IWAE NLL of all was at ELBO beta {overall[1].elbo_beta:.4g}, "
                "where the posterior collapsed"
            )
        reason = (
            f"lowest held-out IWAE NLL ({_iwae(best):.2f}{_se(best)} nats, K={iwae_samples}) among the "
            f"{len(usable)} of {len(sweep)} betas without collapse, with {m.active_units} of {k} "
            f"dims active{skipped}"
        )
    elif any(r.verdict.name == "too early to tell" for r in sweep):
        return None  # the judged betas collapsed; the others cannot say yet whether they do
    else:
        i, best = min(measured, key=lambda ir: ir[1].elbo_beta)
        reason = (
            f"every beta of the sweep collapsed (0 active dims or identical outputs), so this is "
            f"only its lowest beta: the sweep needs lower betas (try --sweep with values below "
            f"{objective.kl_weight_for(best.elbo_beta, sizes):.3g} in your units)"
        )
    compared = [r for _, r in (usable or measured)]
    unconverged = [r for r in compared if r.status is not None and not r.status.converged]
    if unconverged:
        among = ", this one among them" if any(r is best for r in unconverged) else ""
        reason += (
            f"; provisional: {len(unconverged)} of the {len(compared)} models compared did not "
            f"converge{among}"
        )
    return Recommendation(
        i,
        objective.kl_weight_for(best.elbo_beta, sizes),
        best.elbo_beta,
        "best-held-out-iwae",
        reason + _caveat(best, k),
    )


def best_mean_iwae(
    sweep: list[SweepRow], objective: AuditObjective, sizes: dict[str, int], iwae_samples: int
) -> Recommendation | None:
    """With several seeds per beta (``--seeds``): the beta with the lowest mean held-out IWAE
    NLL across its seeds, among those none of whose seeds collapsed; the reason gives that mean
    with its standard error across seeds, and says whether the next best beta is within that
    noise (:func:`~vaeloss.audit.seeds.within_noise`). When every beta collapsed at some seed,
    :func:`best_iwae` names the lowest beta."""
    groups = spreads(sweep)
    judged = [
        g
        for g in groups
        if "iwae_nll" in g.metrics and all(sweep[i].verdict.name != "too early to tell" for i in g.rows)
    ]
    usable = [g for g in judged if not any(sweep[i].verdict.collapsed for i in g.rows)]
    if not usable:
        return best_iwae(sweep, objective, sizes, iwae_samples)
    ranked = sorted(usable, key=lambda g: g.metrics["iwae_nll"].mean)
    best, nll = ranked[0], ranked[0].metrics["iwae_nll"]
    se = "" if nll.se is None else f" ± {nll.se:.2g}"
    units = best.metrics["active_units"].mean if "active_units" in best.metrics else 0.0
    reason = (
        f"lowest mean held-out IWAE NLL across {nll.n} seeds ({nll.mean:.2f}{se} nats, the standard "
        f"error across seeds; K={iwae_samples}) among the {len(usable)} of {len(groups)} betas "
        f"without collapse at any seed, with {units:.3g} of {sizes['k']} dims active on average"
    )
    if len(ranked) > 1:
        nxt, other = ranked[1], ranked[1].metrics["iwae_nll"]
        said = f"the next best, ELBO beta {nxt.elbo_beta:.4g} ({other.mean:.2f}"
        said += "" if other.se is None else f" ± {other.se:.2g}"
        if within_noise(nll, other):
            reason += f"; {said}), is within the noise of it: these seeds cannot tell the two apart"
            reason += " (try more --seeds)"
        elif nll.se is not None and other.se is not None:
            gap = (other.mean - nll.mean) / math.hypot(nll.se, other.se)
            reason += f"; {said}) is {gap:.1f} standard errors of their difference worse"
    rows = [sweep[i] for g in usable for i in g.rows]
    unconverged = [r for r in rows if r.status is not None and not r.status.converged]
    if unconverged:
        reason += f"; provisional: {len(unconverged)} of the {len(rows)} models compared did not converge"
    first = best.rows[0]
    return Recommendation(
        first,
        objective.kl_weight_for(best.elbo_beta, sizes),
        best.elbo_beta,
        "best-held-out-iwae",
        reason + _caveat(sweep[first], sizes["k"]),
    )


def by_calibration(
    calibration: Calibration, sweep: list[SweepRow], objective: AuditObjective, sizes: dict[str, int]
) -> Recommendation:
    """The calibrated decoder variance as the recommended ELBO beta (squared-error losses)."""
    sigma2, trace = calibration.variance, calibration.trace
    index = min(range(len(sweep)), key=lambda i: abs(math.log(max(sweep[i].elbo_beta, 1e-12) / sigma2)))
    reason = (
        "for a squared-error loss beta is the decoder variance; the maximum-likelihood decoder "
        f"variance of the trained model is sigma^2 = {sigma2:.4g} "
        f"(iterates: {', '.join(f'{v:.4g}' for v in trace)})"
    )
    if not calibration.converged:
        reason += "; the calibration's training did not converge within its budget, so this is provisional"
    return Recommendation(
        index,
        objective.kl_weight_for(sigma2, sizes),
        sigma2,
        "sigma-calibration",
        reason + _caveat(sweep[index], sizes["k"]),
        trace,
    )


def collapse_points(beta0: float, kl_per_dim: list[float], *, min_kl: float = 0.01) -> list[float]:
    """Predicted collapse beta of each dim active at beta0, sorted from last to first to go.

    >>> [round(b, 9) for b in collapse_points(1.0, [0.5 * math.log(4), 0.0])]
    [4.0]
    """
    pts = [beta0 * math.exp(2 * kl) for kl in kl_per_dim if kl > min_kl]
    return sorted(pts, reverse=True)


def prediction_check(points: list[float], sweep: list[SweepRow]) -> PredictionCheck:
    """Compare predicted active counts (#points above beta) with measured active units."""
    rows: list[dict[str, float | int]] = []
    for r in sweep:
        if r.metrics is None:
            continue
        predicted = sum(p > r.elbo_beta for p in points)
        rows.append({"beta_elbo": r.elbo_beta, "predicted": predicted, "measured": r.metrics.active_units})
    err = [abs(x["predicted"] - x["measured"]) for x in rows]
    return PredictionCheck(rows, sum(err) / max(1, len(err)), sum(e == 0 for e in err))


def predicted_collapse(
    rec: Recommendation, sweep: list[SweepRow], objective: AuditObjective, sizes: dict[str, int]
) -> CollapsePoints | None:
    """Collapse points predicted from the recommended model, in both units, with their check."""
    ref = sweep[rec.index]
    if ref.metrics is None or ref.verdict.collapsed:
        return None  # a collapsed model's KL per dim predicts nothing about the others
    points = collapse_points(ref.elbo_beta, ref.metrics.kl_per_dim)
    return CollapsePoints(
        ref.elbo_beta,
        points,
        [objective.kl_weight_for(p, sizes) for p in points],
        prediction_check(points, sweep),
    )
