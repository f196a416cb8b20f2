"""The probe's orchestration: find the caller under which the loss fits, then its factors at
three sizes of B, D and k, its KL-weight parameter, its gradients and its behaviour at edge
inputs (see :mod:`vaeloss.check.probe`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Literal

from vaeloss.check.objects import LossObject, StateGuard
from vaeloss.check.probe.calling import Caller
from vaeloss.check.probe.diagnostics import edge_failures, gradients_of, stochastic
from vaeloss.check.probe.inputs import resize
from vaeloss.check.probe.measure import Fixed, Plan, fit_at
from vaeloss.check.probe.search import Reading, read, search
from vaeloss.check.result import MC_TOLERANCE, MC_ZSCORE, ProbeResult, SizeFit

__all__ = ["MC_PRECISE", "probe"]

MC_PRECISE = 0.005
"""A Monte-Carlo fit this good needs no more draws."""


def _fixed(reading: Reading) -> Fixed:
    """The hypothesis and parameterisation each value was found to have."""
    return [
        ((f.likelihood, f.decoder_output) if f.likelihood and f.decoder_output else None, f.parameterisation)
        for f in reading.fits
    ]


def _sizes(
    call: Caller, reading: Reading, chosen: list[int], plan: Plan, monte_carlo: bool, base: dict[str, int]
) -> dict[str, SizeFit]:
    """The chosen terms' factors at three values of each of B, D, k (the others at base)."""
    fixed = _fixed(reading)
    out: dict[str, SizeFit] = {}
    dims: tuple[Literal["B", "D", "k"], ...] = ("B", "D", "k")
    for dim in dims:
        values: list[int] = []
        a: list[float] = []
        b: list[float] = []
        error = None
        for factor in (1.0, 2.0, 0.5 if base[dim] >= 2 else 3.0):
            sz, shape = dict(base), call.shape
            if dim == "D":
                shape = resize(call.shape, factor)
                sz["D"] = math.prod(shape)
            else:
                sz[dim] = max(1, round(base[dim] * factor))
            values.append(sz[dim])
            fits = reading.fits
            if factor != 1.0:
                try:
                    other = call.with_shape(shape)
                    fits = fit_at(
                        other, sz["B"], sz["D"], sz["k"], plan, seed=1, fixed=fixed, monte_carlo=monte_carlo
                    )
                except Exception as exc:  # noqa: BLE001 - the loss fails at this size: a fixed size
                    error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                    break
            a.append(fits[chosen[0]].a)
            b.append(fits[chosen[-1]].b)
        out[dim] = SizeFit(dim, values, a, b, error)
    return out


def _monte_carlo(callers: Iterable[Caller], B: int, k: int, plan: Plan) -> tuple[Caller, Reading]:
    """The search on averages over seeds, with more draws until the fit is clearly good (0.5%)
    or clearly off (a few standard errors): a KL that is no Gaussian KL (a flow's) can look like
    one at first."""
    call, reading = search(callers, B=B, k=k, plan=plan, monte_carlo=True)
    D = math.prod(call.shape)
    draws = plan.mc_draws
    while draws < 4 * plan.mc_draws and any(
        f.b and MC_PRECISE <= f.kl_residual < MC_TOLERANCE and f.kl_zscore < MC_ZSCORE for f in reading.fits
    ):
        draws *= 2
        reading = read(fit_at(call, B, D, k, replace(plan, mc_draws=draws), monte_carlo=True))
    return call, reading


def _weight_effects(
    call: Caller,
    reading: Reading,
    chosen: list[int],
    weights: dict[str, float],
    plan: Plan,
    monte_carlo: bool,
    B: int,
    k: int,
) -> dict[str, dict[str, float]]:
    """For each numeric argument of the loss, the factors with it doubled (or set to 1 from 0):
    the one that doubles the KL factor alone is the loss's KL weight."""
    D = math.prod(call.shape)
    fixed = _fixed(reading)
    out: dict[str, dict[str, float]] = {}
    for pname, value in weights.items():
        doubled = {pname: 2 * value if value else 1.0}
        try:
            f2 = fit_at(call, B, D, k, plan, seed=2, fixed=fixed, monte_carlo=monte_carlo, **doubled)
        except Exception:  # noqa: BLE001 - not a weight the loss can take doubled
            continue
        out[pname] = {"a": f2[chosen[0]].a, "b": f2[chosen[-1]].b, "value": value}
    return out


def probe(
    obj: LossObject,
    make_callers: Callable[[StateGuard, list[float]], Iterable[Caller]],
    weights: dict[str, float],
    *,
    B: int,
    D: int,
    k: int,
    plan: Plan,
    budget: float | None = None,
) -> ProbeResult:
    """Find the caller (form, layout, data kind) under which the loss fits, then its factors
    at three sizes of B, D and k, its KL-weight parameter, its gradients and its behaviour at
    edge inputs.

    ``budget`` is the time left for the user's calls (seconds): when the rest of the full plan
    would not fit in most of it at the loss's measured speed, the size fits use
    :meth:`Plan.reduced`.

    Raises:
        ProbeFailure: no form could call the loss, or it returned something that is not a loss.
    """
    guard = StateGuard(obj.instance)
    timings: list[float] = []
    call, reading = search(make_callers(guard, timings), B=B, k=k, plan=plan)
    D = math.prod(call.shape)
    monte_carlo = reading.score[0] >= 2 and stochastic(call, B, D, k)
    if monte_carlo:  # a Monte-Carlo KL: search again on averages over seeds (expectations)
        call, reading = _monte_carlo(make_callers(guard, timings), B, k, plan)
        # the size fits need only the factors' ratios (integer exponents): the fewest calls
        plan = replace(Plan.reduced(), mc_draws=plan.mc_draws // 2)
    if budget is not None and timings:
        per_call = sorted(timings)[len(timings) // 2] * (plan.mc_samples(B, k) if monte_carlo else 1)
        left = budget - sum(timings)  # the user's calls only: the budget is theirs
        if per_call * plan.remaining_calls(len(weights)) > 0.7 * left:
            plan = Plan.reduced()
    chosen = [reading.total] if reading.total is not None else list(reading.components or (0,))
    sizes = _sizes(call, reading, chosen, plan, monte_carlo, {"B": B, "D": D, "k": k})
    weight_effects = _weight_effects(call, reading, chosen, weights, plan, monte_carlo, B, k)
    gradients = gradients_of(call, B, D, k, chosen) if call.backend.differentiable else {}
    edges = (
        edge_failures(call, B, D, k, reading.fits[chosen[0]], call.positions[chosen[0]])
        if len(chosen) == 1
        else []
    )
    seconds = sorted(timings)[len(timings) // 2] if timings else 0.0
    return ProbeResult(
        roles=call.describe(),
        input_shape=list(call.shape),
        recon_flat=call.recon_flat,
        binary_data=call.binary,
        output=call.output,
        read_as=call.read_as,
        positions=call.positions,
        fits=reading.fits,
        total=reading.total,
        components=reading.components,
        constants=[(call.positions[i], reading.fits[i].c) for i in reading.constants],
        sizes=sizes,
        weight_effects=weight_effects,
        gradients=gradients,
        edges=edges,
        state_changes=guard.changed(),
        monte_carlo=monte_carlo,
        seconds_per_call=seconds,
        calls=len(timings),
    )
