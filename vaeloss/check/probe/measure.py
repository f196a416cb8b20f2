r"""One fit of every value a loss returns, at one set of sizes: the calls of the loss at
changed inputs, the reference NLLs and KLs at the same inputs, and the fit
(:func:`vaeloss.check.probe.fit.fit_element`), then a verification on fresh joint inputs.

Each value is modelled as :math:`L = a\,N(r, x) + b\,K(\mu, s) + c` where :math:`N` is the
batch-and-data sum of a reference NLL and :math:`K` the batch-and-latent sum of the Gaussian KL
in one parameterisation. Varying the reconstruction side alone gives :math:`\Delta L = a\,\Delta
N`; varying the latent side alone gives :math:`\Delta L = b\,\Delta K`. A loss that samples is
called with the same random seed for every input (common random numbers), and with
``monte_carlo`` averaged over seeds: the Monte-Carlo KL's expectation is the analytic KL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from vaeloss.check.probe.calling import Caller
from vaeloss.check.probe.fit import Hypothesis, Observations, fit_element, mean, standard_errors
from vaeloss.check.probe.inputs import SEED, generator, latent_inputs, recon_inputs
from vaeloss.check.result import ElementFit
from vaeloss.objective.kl import PARAMETERISATIONS, LatentParameterisation, kl_normal
from vaeloss.objective.likelihoods import element_nll

__all__ = [
    "HYPOTHESES",
    "Fixed",
    "NotFinite",
    "Plan",
    "ProbeFailure",
    "draws",
    "fit_at",
    "reference_nll",
    "values",
]

HYPOTHESES: tuple[Hypothesis, ...] = (
    ("bernoulli", "probabilities"),
    ("bernoulli", "logits"),
    ("gaussian", "mean"),
    ("gaussian", "logits"),
    ("continuous_bernoulli", "probabilities"),
    ("continuous_bernoulli", "logits"),
    ("laplace", "mean"),
    ("multinomial", "logits"),
    ("multinomial", "probabilities"),
)
Fixed = list[tuple[Hypothesis | None, LatentParameterisation | None]]
"""Per value, the hypothesis and parameterisation found before (a size fit keeps them)."""


class ProbeFailure(Exception):
    """The loss could not be probed; the message says why."""


class NotFinite(ProbeFailure):
    """The loss returned a value that is not finite at ordinary inputs (under one way of
    calling it: another may place them right)."""


@dataclass(frozen=True)
class Plan:
    """How many calls a fit spends (fewer for a slow loss)."""

    recon_probes: int = 4
    latent_probes: int = 6
    verify: int = 3
    mc_draws: int = 16000
    size_recon: int = 2
    size_latent: int = 3
    size_verify: int = 1

    @classmethod
    def reduced(cls) -> Plan:
        """The fewest calls that still find and verify the factors (for a slow loss)."""
        return cls(2, 4, 1, mc_draws=4000, size_recon=1, size_latent=2, size_verify=0)

    def remaining_calls(self, n_weights: int) -> int:
        """Calls after the search: 6 size fits, one per numeric argument, gradients, edges."""
        per_fit = 1 + self.size_recon + self.size_latent + self.size_verify
        return per_fit * (6 + n_weights) + 8

    def mc_samples(self, B: int, k: int) -> int:
        """Calls averaged per input for a Monte-Carlo KL: enough for ``mc_draws`` latent draws,
        between 16 and 512 (the fitted factor is then within about 5%)."""
        return max(16, min(2048, math.ceil(self.mc_draws / (B * k))))

    @property
    def calls(self) -> int:
        """Calls of one fit at new inputs."""
        return 1 + self.recon_probes + self.latent_probes + self.verify


def reference_nll(h: Hypothesis, r: Tensor, x: Tensor) -> float:
    """The batch-and-data sum of the reference NLL of hypothesis ``h`` (unit scale)."""
    return float(element_nll(r, x, likelihood=h[0], decoder_output=h[1], validate=False).sum())


def _kl(p: LatentParameterisation, mu: Tensor, s: Tensor) -> float:
    return float(kl_normal(mu, s, parameterisation=p).sum())


def draws(
    call: Caller, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, samples: int, **kw: Any
) -> list[list[float]]:
    """The loss's values at these inputs under ``samples`` seeds (the same seeds for every
    input: common random numbers), one vector per seed."""
    out = []
    for i in range(samples):
        call.seed = SEED + i
        out.append(call(r, x, mu, s, **kw))
    call.seed = SEED
    return out


def finite_mean(rows: Sequence[Sequence[float]]) -> list[float]:
    """:func:`~vaeloss.check.probe.fit.mean`, refusing values that are not finite."""
    out = mean(rows)
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise NotFinite(
            f"the function returned {bad[0]} at ordinary inputs "
            "(probabilities in [0.05, 0.95], |mu| ~ 1, scales in [0.01, 2])"
        )
    return out


def values(
    call: Caller, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, samples: int = 1, **kw: Any
) -> list[float]:
    """The loss's values at these inputs: one call, or the mean over ``samples`` seeds."""
    return finite_mean(draws(call, r, x, mu, s, samples, **kw))


def _recon_refs(
    base: tuple[Tensor, Tensor], probes: list[tuple[Tensor, Tensor]]
) -> dict[Hypothesis, tuple[float, list[float]]]:
    refs = {}
    for h in HYPOTHESES:
        try:
            n0 = reference_nll(h, *base)
            refs[h] = (n0, [reference_nll(h, r, x) - n0 for r, x in probes])
        except (RuntimeError, ValueError):  # a hypothesis that does not apply to these inputs
            continue
    return refs


def _kl_refs(
    base: tuple[Tensor, Tensor], probes: list[tuple[Tensor, Tensor]]
) -> dict[LatentParameterisation, tuple[float, list[float]]]:
    refs = {}
    for p in PARAMETERISATIONS:
        k0 = _kl(p, *base)
        refs[p] = (k0, [_kl(p, mu, s) - k0 for mu, s in probes])
    return refs


def fit_at(
    call: Caller,
    B: int,
    D: int,
    k: int,
    plan: Plan,
    *,
    seed: int = 0,
    fixed: Fixed | None = None,
    monte_carlo: bool = False,
    **kw: Any,
) -> list[ElementFit]:
    """Fit a, b (and c) of every returned value at one set of sizes.

    ``fixed`` (per value) restricts the hypotheses to the ones found before (size fits);
    ``monte_carlo`` averages every value over seeds (:meth:`Plan.mc_samples` of them).
    """
    samples = plan.mc_samples(B, k) if monte_carlo else 1
    if monte_carlo:  # fewer inputs, each averaged over many draws
        plan = Plan(recon_probes=2, latent_probes=4, verify=1, mc_draws=plan.mc_draws)
    g = generator(seed)
    n_r = plan.recon_probes if fixed is None else plan.size_recon
    n_k = plan.latent_probes if fixed is None else plan.size_latent
    n_v = plan.verify if fixed is None else plan.size_verify
    r0, x0 = recon_inputs(B, D, g, call.binary)
    mu0, s0 = latent_inputs(B, k, g, 0)
    base = draws(call, r0, x0, mu0, s0, samples, **kw)
    L0 = finite_mean(base)
    recon_probes = [recon_inputs(B, D, g, call.binary) for _ in range(n_r)]
    dl_r = [[v - b for v, b in zip(values(call, r, x, mu0, s0, samples, **kw), L0)] for r, x in recon_probes]
    kinds = 4 if monte_carlo else 3
    latent_probes = [latent_inputs(B, k, g, i % kinds) for i in range(n_k)]
    dl_k, se_k = [], []
    for mu, s in latent_probes:
        diffs = [
            [v - b for v, b in zip(d, d0)] for d, d0 in zip(draws(call, r0, x0, mu, s, samples, **kw), base)
        ]
        dl_k.append(finite_mean(diffs))
        se_k.append(standard_errors(diffs))
    refs_r = _recon_refs((r0, x0), recon_probes)
    refs_k = _kl_refs((mu0, s0), latent_probes)
    fits = []
    for j in range(len(L0)):
        given_r, given_k = fixed[j] if fixed is not None else (None, None)
        obs = Observations(
            L0[j],
            [row[j] for row in dl_r],
            [row[j] for row in dl_k],
            [se[j] for se in se_k],
            samples > 1,
            call.backend.resolution,
        )
        hyp_r = {h: v for h, v in refs_r.items() if given_r is None or h == given_r}
        hyp_k = {p: v for p, v in refs_k.items() if given_k is None or p == given_k}
        fits.append(fit_element(obs, hyp_r, hyp_k))
    _verify(call, fits, L0, B, D, k, n_v, g, samples, kw)
    return fits


def _verify(
    call: Caller,
    fits: list[ElementFit],
    L0: list[float],
    B: int,
    D: int,
    k: int,
    n: int,
    g: Any,
    samples: int,
    kw: dict[str, object],
) -> None:
    """Each fit's worst relative misfit on ``n`` fresh joint inputs (``verify_residual``)."""
    worst = [0.0] * len(fits)
    for i in range(n):
        r, x = recon_inputs(B, D, g, call.binary)
        mu, s = latent_inputs(B, k, g, i)
        actual = values(call, r, x, mu, s, samples, **kw)
        for j, f in enumerate(fits):
            expected = f.c
            if f.a and f.likelihood is not None and f.decoder_output is not None:
                expected += f.a * reference_nll((f.likelihood, f.decoder_output), r, x)
            if f.b and f.parameterisation is not None:
                expected += f.b * _kl(f.parameterisation, mu, s)
            worst[j] = max(worst[j], abs(actual[j] - expected) / max(abs(actual[j]), abs(L0[j]), 1e-12))
    for f, w in zip(fits, worst):
        f.verify_residual = w
