"""What the probe checks besides the factors: whether the loss samples, whether every input
gets a gradient, and whether it stays finite at valid edge inputs."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaeloss.check.probe.calling import Caller
from vaeloss.check.probe.inputs import DTYPE, SEED, generator, latent_inputs, recon_inputs
from vaeloss.check.probe.measure import values
from vaeloss.check.probe.outputs import output_scalar
from vaeloss.check.result import ElementFit, rounding_floor

__all__ = ["edge_failures", "gradients", "gradients_of", "stochastic"]


def stochastic(call: Caller, B: int, D: int, k: int) -> bool:
    """Whether two calls with the same inputs but different random seeds differ (by more than
    the arithmetic's rounding: a Monte-Carlo KL weighted 1e-3 beside a reconstruction summed and
    multiplied by D changes the loss by 1e-10 of its value)."""
    g = generator(3)
    r, x = recon_inputs(B, D, g, call.binary)
    mu, s = latent_inputs(B, k, g, 0)
    first = values(call, r, x, mu, s)
    call.seed = SEED + 1
    try:
        second = call(r, x, mu, s)
    finally:
        call.seed = SEED
    rounding = rounding_floor(call.backend.resolution)
    return any(abs(a - b) > rounding * max(abs(a), abs(b), 1e-300) for a, b in zip(first, second))


def gradients(call: Caller, B: int, D: int, k: int, index: int) -> dict[str, bool]:
    """Which inputs the returned value ``index`` has a finite, non-zero gradient with respect
    to (``recon``, ``mu``, ``scale``), and whether it has a gradient graph at all."""
    g = generator(7)
    r, x = recon_inputs(B, D, g, call.binary)
    mu, s = latent_inputs(B, k, g, 0)
    t = call.tensors(r, x, mu, s)
    fixed = {role: call.backend.array(v) for role, v in t.items() if role not in ("recon", "mu", "scale")}

    def loss(recon: object, mu_: object, scale: object) -> object:
        values = {"recon": recon, "mu": mu_, "scale": scale, **fixed}
        return output_scalar(call.invoke(values), B, index, call.backend)

    grads = call.backend.gradients(loss, [t["recon"], t["mu"], t["scale"]])
    if grads is None:
        return {"recon": False, "mu": False, "scale": False, "graph": False}
    flags = {
        n: g_ is not None and bool(torch.isfinite(g_).all()) and float(g_.abs().max()) > 0
        for n, g_ in zip(("recon", "mu", "scale"), grads)
    }
    return {**flags, "graph": True}


def gradients_of(call: Caller, B: int, D: int, k: int, chosen: list[int]) -> dict[str, bool]:
    """Gradients of the loss (the value that is the loss, or the sum of the components)."""
    flags = [gradients(call, B, D, k, call.positions[i]) for i in chosen]
    return {key: any(f[key] for f in flags) for key in flags[0]}


def edge_failures(call: Caller, B: int, D: int, k: int, fit: ElementFit, index: int) -> list[str]:
    """The valid edge inputs at which the value ``index`` raises or is not finite: exact 0 and 1
    probabilities (for a loss reading probabilities) and a log-variance of +-20."""
    g = generator(11)
    _, x = recon_inputs(B, D, g)
    mu, s = latent_inputs(B, k, g, 0)
    cases: list[tuple[str, Tensor, Tensor, Tensor, Tensor]] = []
    if fit.decoder_output == "probabilities":
        xb = (x > 0.5).to(DTYPE)
        cases += [
            ("probabilities of exactly 0 and 1 agreeing with binary data", xb.clone(), xb, mu, s),
            ("probabilities of exactly 0 and 1 opposite to binary data", 1 - xb, xb, mu, s),
        ]
    r, x = recon_inputs(B, D, g, call.binary)
    param = fit.parameterisation or "logvar"
    for lv in (20.0, -20.0):
        logvar = torch.full((B, k), lv, dtype=DTYPE)
        value = {
            "logvar": logvar,
            "log_std": logvar / 2,
            "std": torch.exp(logvar / 2),
            "var": torch.exp(logvar),
        }
        cases.append((f"logvar={lv:+g}", r, x, mu, value[param]))
    bad = []
    for name, r_, x_, mu_, s_ in cases:
        try:
            with call.backend.no_grad():
                v = call.backend.number(output_scalar(call.raw(r_, x_, mu_, s_), B, index, call.backend), B)
        except Exception as exc:  # noqa: BLE001 - any failure is a finding
            bad.append(f"{name}: raised {type(exc).__name__}: {str(exc)[:120]}")
            continue
        if v is None or not math.isfinite(v):
            bad.append(f"{name}: returned {v}")
    return bad
