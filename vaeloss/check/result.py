"""The result of a check: :class:`Finding`, :class:`CheckReport`, and fitting exact monomials
to probed factors."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from vaeloss.check.observe.result import Observation
from vaeloss.jsontypes import JsonObject
from vaeloss.objective.algebra import Monomial
from vaeloss.objective.convention import Convention, Output
from vaeloss.usercode.loader import Skipped

if TYPE_CHECKING:  # the types only: the CLI process of check does not import torch
    from vaeloss.objective.kl import LatentParameterisation
    from vaeloss.objective.likelihoods import DecoderOutput, Likelihood

__all__ = [
    "MC_TOLERANCE",
    "ROUNDING_CAP",
    "ROUNDING_FACTOR",
    "rounding_floor",
    "TOLERANCE",
    "CandidateKind",
    "CandidateSummary",
    "CheckReport",
    "ElementFit",
    "Finding",
    "Plain",
    "ProbeResult",
    "Severity",
    "SizeFit",
    "ThroughModel",
    "fit_monomial",
]

Severity = Literal["error", "warning", "info"]

TOLERANCE = 1e-6
"""Relative misfit below which a term is a multiple of a reference (a likelihood, the KL),
for a loss computed in float64."""
RESOLUTION_FACTOR = 1e4
"""For a loss computed in coarser arithmetic (Keras 3 on torch reduces in float32, resolution
1.2e-7), the tolerance is this many times the resolution (1.2e-3 in float32): its rounding,
amplified where a fit compares small changes of a large value, stays below it, and the
likelihoods and parameterisations still differ by more (1e-2 and more at the probe's inputs)."""
ROUNDING_FACTOR = 64.0
"""A term whose changes are small next to the loss's value (a KL weighted 1e-3 beside a
reconstruction summed and multiplied by D) is measured through differences of large values:
its relative misfit has a floor of about ``eps * |loss| / |changes|`` (eps the arithmetic's
rounding), taken this many times as the tolerance's floor for that fit."""


def rounding_floor(resolution: float) -> float:
    """``ROUNDING_FACTOR`` times the arithmetic's relative rounding (float64's unless coarser).

    >>> rounding_floor(0.0) == ROUNDING_FACTOR * 2.0**-52
    True
    """
    return ROUNDING_FACTOR * max(resolution, 2.0**-52)


ROUNDING_CAP = 1e-3
"""Past this floor the term is too small to tell its parameterisation or likelihood (they differ
by 1e-2 and more): the fit is held to the usual tolerance, and does not pass."""
MC_TOLERANCE = 0.05
"""The same for a loss whose KL is a Monte-Carlo estimate, fitted on an average over seeds."""
MC_ZSCORE = 4.0
"""A Monte-Carlo fit is kept only when every probe's misfit is within this many standard
errors of its average."""


DECODER_DISTRIBUTION = " (decoder distribution)"
"""How a role's place reads when the loss takes the decoder's distribution (``px (decoder
distribution)``): the one spelling the call forms write and the report reads."""

Plain = int | float | str | bool | None
"""A value as JSON carries it (the loss's arguments and defaults; others as their repr)."""
CandidateKind = Literal["full loss", "terms apart", "reconstruction only", "KL only", "neither", "unprobed"]
_SUMMARIES: dict[CandidateKind, str] = {
    "full loss": "a full loss (reconstruction and KL)",
    "terms apart": "the loss's terms, returned apart",
    "reconstruction only": "a reconstruction term only",
    "KL only": "a KL term only",
    "neither": "neither term of a VAE loss",
    "unprobed": "cannot be probed",
}


@dataclass(frozen=True)
class CandidateSummary:
    """What a candidate of the file probed as, when the user named none."""

    name: str
    kind: CandidateKind
    error: str | None = None  # why it cannot be probed (the exception's type)
    described: str = ""  # for people, when the name is not the code's (a loss computed inline)

    @property
    def summary(self) -> str:
        """The report's words: ``a full loss (reconstruction and KL)``..."""
        text = _SUMMARIES[self.kind]
        return f"{text} ({self.error})" if self.error else text

    @property
    def whole(self) -> bool:
        """Whether it probes as a whole VAE loss (both terms, together or apart)."""
        return self.kind in ("full loss", "terms apart")


@dataclass(frozen=True)
class ThroughModel:
    """How a loss computed inside a model was probed: the submodules whose outputs were
    replaced, the shape of one sample, and the model's learned decoder scales (by name)."""

    mu: str
    scale: str
    recon: str
    input_shape: tuple[int, ...]
    log_scales: dict[str, float]
    draws: int = 0  # S when the decoder gives S draws per sample ([S, B, ...]); 0: one

    def to_json(self) -> JsonObject:
        return {
            "mu": self.mu,
            "scale": self.scale,
            "recon": self.recon,
            "input_shape": list(self.input_shape),
            "log_scales": dict(self.log_scales),
            "draws": self.draws,
        }


@dataclass(frozen=True)
class Finding:
    """One finding: a registered ``code`` (:mod:`vaeloss.check.findings`), its severity, a plain
    message and the source line it points at (or None)."""

    code: str
    severity: Severity
    message: str
    line: int | None = None
    where: str | None = None  # "line 12", or "cell 3, line 4" in a notebook

    def to_json(self) -> JsonObject:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "line": self.line,
            "where": self.where,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        """The finding :meth:`to_json` wrote."""
        return cls(data["code"], data["severity"], data["message"], data["line"], data["where"])


@dataclass
class CheckReport:
    """Everything ``vaeloss check`` found, as data (``to_json`` gives the --json object).

    The factors found for each term are kept as fitted; every quantity derived from them
    (effective beta, gradient scale, KL weight for the ELBO) comes from :attr:`objective`.
    ``fixed_dims`` are the sizes the loss could not be called at other values of (a
    hard-coded 784): the formulas hold at their value only. ``framework`` is the one the loss
    ran in (``torch``, ``keras (Keras 3 on its torch backend)``, ``tensorflow``, ``jax``,
    ``numpy``); ``supplied`` the Keras 2 names given to it from Keras 3
    (:mod:`vaeloss.usercode.keras2`); ``observed`` the run of the user's step that chose the
    loss and the sizes (run mode, :mod:`vaeloss.check.observe`); ``given_sizes`` the sizes the
    user gave (``B``, ``D``, ``k``).
    """

    function: str
    path: str
    selected_because: str
    described: str
    sizes: dict[str, int]
    probe: ProbeResult
    recon_factor: Monomial | None
    kl_factor: Monomial | None
    fixed_dims: tuple[str, ...]
    defaults: dict[str, Plain]
    kl_weight_parameter: str | None
    others: tuple[CandidateSummary, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    through_model: ThroughModel | None = None
    framework: str = "torch"
    supplied: tuple[str, ...] = ()
    observed: Observation | None = None
    given_sizes: tuple[str, ...] = ()
    where: Callable[[int | None], str | None] = field(
        default=lambda line: None if line is None else f"line {line}"
    )
    findings: list[Finding] = field(default_factory=list)
    fix: str = ""

    @property
    def likelihood(self) -> Likelihood | None:
        return self.probe.recon_fit.likelihood if self.recon_factor is not None else None

    @property
    def decoder_output(self) -> DecoderOutput | None:
        return self.probe.recon_fit.decoder_output if self.recon_factor is not None else None

    @property
    def latent_parameterisation(self) -> LatentParameterisation | None:
        return self.probe.kl_fit.parameterisation if self.kl_factor is not None else None

    @property
    def output(self) -> Output:
        return "per_sample" if self.probe.output == "per_sample" else "scalar"

    @property
    def roles(self) -> dict[str, str]:
        return self.probe.roles

    @property
    def decoder_distribution(self) -> str | None:
        """The argument the loss takes its decoder's distribution from (``px``, whose
        ``log_prob`` it calls), or None. Its likelihood is then the user's decoder's: the probe
        passes a Bernoulli in its place, which measures the term's reductions and factor only."""
        where = self.probe.roles.get("recon", "")
        return where.removesuffix(DECODER_DISTRIBUTION) if where.endswith(DECODER_DISTRIBUTION) else None

    @property
    def input_shape(self) -> list[int]:
        return self.probe.input_shape

    @property
    def data_dim_fixed(self) -> bool:
        return "D" in self.fixed_dims

    @property
    def objective(self) -> Convention | None:
        """The loss as a :class:`Convention`, when both terms were identified."""
        if self.recon_factor is None or self.kl_factor is None or self.likelihood is None:
            return None
        if self.recon_factor.coef == 0 or self.latent_parameterisation is None:
            return None
        return Convention(
            f"{self.path}:{self.function}",
            self.likelihood,
            self.recon_factor,
            self.kl_factor,
            output=self.output,
            description="your loss, as found by vaeloss check",
            decoder_output=self.decoder_output,
            latent_parameterisation=self.latent_parameterisation,
        )

    @property
    def beta(self) -> Monomial | None:
        obj = self.objective
        return None if obj is None else obj.beta_monomial

    @property
    def effective_beta(self) -> float | None:
        """The effective beta at the check's sizes (also when no formula holds)."""
        rfit, kfit = self.probe.recon_fit, self.probe.kl_fit
        if not (rfit.recon_ok and kfit.kl_ok and rfit.a and rfit.likelihood and kfit.parameterisation):
            return None
        if self.coarse and self.beta is not None:  # the formula's exact value, not float32's
            return self.beta.evaluate(**self.sizes)
        return kfit.b / rfit.a

    @property
    def coarse(self) -> bool:
        """Whether the loss computed in coarser arithmetic than float64 (Keras on torch): its
        numbers are the formulas' values, its raw factors are off by that arithmetic's rounding."""
        return max(self.probe.recon_fit.resolution, self.probe.kl_fit.resolution) > 0

    @property
    def formula_holds(self) -> bool:
        """Whether the factors are monomials in B, D, k at three sizes of each."""
        return self.objective is not None

    @property
    def gradient_scale(self) -> float | None:
        rfit = self.probe.recon_fit
        if self.coarse and self.recon_factor is not None:
            return self.recon_factor.evaluate(**self.sizes) * self.sizes["B"]
        return rfit.a * self.sizes["B"] if rfit.recon_ok and rfit.a else None

    @property
    def kl_weight_for_elbo(self) -> float | None:
        beta = self.effective_beta
        return None if beta is None or beta == 0 else 1.0 / beta

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    def to_json(self) -> JsonObject:
        obj = self.objective
        no_kl = obj is None or obj.kl_base.coef == 0
        p = self.probe
        return {
            "function": self.function,
            "path": self.path,
            "selected_because": self.selected_because,
            "described": self.described,
            # a decoder distribution passed in: the user's decoder's, not the probe's stand-in
            "likelihood": "decoder distribution" if self.decoder_distribution else self.likelihood,
            "decoder_output": None if self.decoder_distribution else self.decoder_output,
            "latent_parameterisation": self.latent_parameterisation,
            "output": self.output,
            "returns": self.returns_json(),
            "roles": self.roles,
            "input_shape": self.input_shape,
            "sizes": self.sizes,
            "recon_factor_formula": None if self.recon_factor is None else self.recon_factor.formula(),
            "kl_factor_formula": None if self.kl_factor is None else self.kl_factor.formula(),
            "effective_beta": self.effective_beta,
            "effective_beta_formula": None if obj is None else obj.effective_beta_formula,
            "formula_fixed_dims": list(self.fixed_dims),
            "implied_decoder_variance": self.effective_beta if self.likelihood == "gaussian" else None,
            "gradient_scale": self.gradient_scale,
            "gradient_scale_formula": None if obj is None else obj.gradient_scale_formula,
            "kl_weight_for_elbo": self.kl_weight_for_elbo,
            "kl_weight_for_elbo_formula": None if no_kl or obj is None else obj.kl_weight_formula_for_elbo(),
            "kl_weight_parameter": self.kl_weight_parameter,
            "monte_carlo_kl": p.monte_carlo,
            "defaults": self.defaults,
            "data_dim_fixed": self.data_dim_fixed,
            "other_candidates": [
                {"name": o.name, "summary": o.summary, "described": o.described or o.name}
                for o in self.others
            ],
            "through_model": None if self.through_model is None else self.through_model.to_json(),
            "framework": self.framework,
            "keras2_supplied": list(self.supplied),
            "observed": None if self.observed is None else self.observed.to_json(),
            "statements_not_run": [s.to_json() for s in self.skipped],
            "seconds_per_call": p.seconds_per_call,
            "findings": [f.to_json() for f in self.findings],
            "fix": self.fix,
        }

    def returns_json(self) -> JsonObject:
        """How the loss returns its value: one value, the loss among several, or its terms."""
        p = self.probe
        if p.components is not None:
            r, k = p.components
            return {"form": "components", "recon": p.positions[r], "kl": p.positions[k], "read_as": p.read_as}
        if len(p.fits) > 1 and p.total is not None:
            return {"form": "loss among values", "loss": p.positions[p.total], "read_as": p.read_as}
        return {"form": "value", "read_as": p.read_as}


@dataclass
class ElementFit:
    """The fit of one value the loss returns: ``a`` times a reference NLL plus ``b`` times the
    Gaussian KL plus ``c``; ``a``/``b`` are 0 when that term is absent."""

    likelihood: Likelihood | None
    decoder_output: DecoderOutput | None
    a: float
    recon_residual: float
    parameterisation: LatentParameterisation | None
    b: float
    kl_residual: float
    c: float
    c_relative: float
    verify_residual: float = 0.0
    recon_alternatives: dict[str, float] = field(default_factory=dict)
    monte_carlo: bool = False
    kl_zscore: float = 0.0  # Monte-Carlo: the largest misfit of a latent probe, in standard errors
    resolution: float = 0.0  # the relative rounding of the framework's arithmetic (0: float64)
    recon_rounding: float = 0.0  # the misfit rounding can cause the reconstruction's fit (ROUNDING_FACTOR)
    kl_rounding: float = 0.0  # the same for the KL's fit

    @property
    def rounding(self) -> float:
        return max(self.recon_rounding, self.kl_rounding)

    @property
    def tolerance(self) -> float:
        if self.monte_carlo:
            return MC_TOLERANCE
        floor = self.rounding if self.rounding <= ROUNDING_CAP else 0.0
        return max(TOLERANCE, RESOLUTION_FACTOR * self.resolution, floor)

    @property
    def recon(self) -> str:
        return "none" if self.likelihood is None else f"{self.likelihood}/{self.decoder_output}"

    @property
    def recon_ok(self) -> bool:
        return self.recon_residual < self.tolerance

    @property
    def kl_ok(self) -> bool:
        """The KL part fits: to ``tolerance``, and for a Monte-Carlo KL within the noise of its
        averages too (a KL that is no Gaussian KL, such as a flow's, is a few errors away)."""
        return self.kl_residual < self.tolerance and self.kl_zscore < MC_ZSCORE

    @property
    def exact(self) -> bool:
        return self.recon_ok and self.kl_ok and self.verify_residual < self.tolerance

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ElementFit:
        return cls(**data)


@dataclass
class SizeFit:
    """The factors of the loss's terms at three values of one size (the others at base).

    ``error`` says why the loss could not be called at another value (a hard-coded size)."""

    dim: Literal["B", "D", "k"]
    values: list[int]
    a: list[float]
    b: list[float]
    error: str | None = None


@dataclass
class ProbeResult:
    """Everything the probe found, as sent back by the worker.

    Attributes:
        roles: role -> where the probe put it (``recon_x``, ``out[0]``, ``q.loc``).
        input_shape: the shape of one sample the loss took.
        binary_data: the loss needed binary data.
        output: "scalar" or "per_sample" (a [B] vector the framework averages).
        read_as: how the value was read ("the dict key 'loss'", "a tuple", "").
        positions: positions in the returned tuple of the values fitted.
        fits: the fit of each value.
        total: the value that is the loss (index into ``fits``), or None.
        components: (reconstruction value, KL value) when the loss returns its terms apart.
        constants: (position, value) of returned numbers that do not depend on the inputs.
        sizes: the three-size fits of the chosen terms, per dimension.
        weight_effects: per numeric parameter, the factors with the parameter doubled.
        gradients: which inputs get a gradient ("recon", "mu", "scale", "graph").
        edges: failures at valid edge inputs.
        state_changes: attributes of the loss object a call changes.
        monte_carlo: the KL term is a Monte-Carlo estimate (fitted in expectation).
        seconds_per_call: median time of one call of the loss; calls: how many were made.
        recon_flat: the reconstruction was passed flat, ``[B, D]``, beside data of
            ``input_shape`` (the loss flattens the data itself).
    """

    roles: dict[str, str]
    input_shape: list[int]
    binary_data: bool
    output: str
    read_as: str
    positions: list[int]
    fits: list[ElementFit]
    total: int | None
    components: tuple[int, int] | None
    constants: list[tuple[int, float]]
    sizes: dict[str, SizeFit]
    weight_effects: dict[str, dict[str, float]]
    gradients: dict[str, bool]
    edges: list[str]
    state_changes: list[str]
    monte_carlo: bool
    seconds_per_call: float
    calls: int
    recon_flat: bool = False

    @property
    def recon_fit(self) -> ElementFit:
        """The fit of the value holding the reconstruction term."""
        return self.fits[self.components[0] if self.components else (self.total or 0)]

    @property
    def kl_fit(self) -> ElementFit:
        """The fit of the value holding the KL term."""
        return self.fits[self.components[1] if self.components else (self.total or 0)]

    def to_json(self) -> JsonObject:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeResult:
        data = dict(data)
        data["fits"] = [ElementFit.from_json(f) for f in data["fits"]]
        data["sizes"] = {k: SizeFit(**v) for k, v in data["sizes"].items()}
        data["components"] = None if data["components"] is None else tuple(data["components"])
        data["constants"] = [tuple(c) for c in data["constants"]]
        return cls(**data)


def _simple(value: float, rtol: float) -> Fraction:
    """The simplest fraction within ``rtol`` of ``value`` (exact rationals up to 10^7): a small
    denominator first, then (where the arithmetic is coarse, ``rtol`` at most 1e-2) a round
    number or its reciprocal (``1/60000``, not the closer ``1/60005`` that float32's rounding
    suggests), then larger denominators.

    >>> _simple(1 / 60005, 1.2e-3), _simple(1 / 784, 1e-9), _simple(0.3, 1e-9)
    (Fraction(1, 60000), Fraction(1, 784), Fraction(3, 10))
    """
    if value == 0:
        return Fraction(0)
    for frac in _candidates(value, rtol):
        if frac != 0 and abs(float(frac) - value) <= rtol * abs(value):
            return frac
    return Fraction(value)


def _candidates(value: float, rtol: float) -> Iterator[Fraction]:
    """Fractions near ``value``, simplest first (see :func:`_simple`)."""
    for limit in (1, 2, 3, 4, 5, 8, 10, 16, 20, 100):
        yield Fraction(value).limit_denominator(limit)
    if rtol <= 1e-2:
        for digits in range(1, 5):
            yield Fraction(f"{value:.{digits}g}")
            yield 1 / Fraction(f"{1 / value:.{digits}g}")
    for limit in (1000, 10**4, 10**5, 10**6, 10**7):
        yield Fraction(value).limit_denominator(limit)


def _exponent(values: list[float], sizes: list[int], rtol: float) -> int | None:
    """The integer exponent e with ``values[i] = values[0] (sizes[i]/sizes[0])^e`` at every
    size, or None."""
    v0 = values[0]
    if v0 == 0 or any(v == 0 or (v > 0) != (v0 > 0) for v in values):
        return 0 if all(v == 0 for v in values) else None
    e = math.log(values[1] / v0) / math.log(sizes[1] / sizes[0])
    exp = round(e)
    if abs(e - exp) > max(1e-6, 3 * rtol):
        return None
    for v, n in zip(values[2:], sizes[2:]):
        if abs(v - v0 * (n / sizes[0]) ** exp) > max(1e-9, 3 * rtol) * abs(v):
            return None
    return exp


def fit_monomial(
    value: float, sizes: dict[str, SizeFit], key: Literal["a", "b"], base: dict[str, int], rtol: float
) -> tuple[Monomial | None, tuple[str, ...]]:
    """The monomial in B, D, k through the factor ``key`` at the three sizes of each dim.

    A dim the loss cannot be called at other values of (a hard-coded 784) has an unknown
    exponent: it is taken as the one power of the dim in -1, 0, 1 that leaves a coefficient of
    1, 2 or 1/2 (what a sum, a mean, and the Gaussian's 1/2 give), and 0 when there is none
    or several; the formula then holds at that dim's base value only.

    Returns:
        (the monomial, or None when the factor is not a monomial at these sizes; the dims that
        could not be varied).
    """
    exps: dict[str, int] = {}
    fixed: list[str] = []
    for name in ("B", "D", "k"):
        fit = sizes.get(name)
        if fit is None or fit.error is not None:
            exps[name] = 0
            fixed.append(name)
            continue
        e = _exponent(getattr(fit, key), fit.values, rtol)
        if e is None:
            return None, tuple(fixed)
        exps[name] = e
    coef = value / (base["B"] ** exps["B"] * base["D"] ** exps["D"] * base["k"] ** exps["k"])
    for name in fixed:
        plain = [p for p in (0, -1, 1) if _plain(coef / base[name] ** p, rtol)]
        if len(plain) == 1 and plain[0] != 0:
            exps[name] = plain[0]
            coef /= base[name] ** plain[0]
    return Monomial(_simple(coef, max(rtol, 1e-9)), exps["B"], exps["D"], exps["k"]), tuple(fixed)


def _plain(coef: float, rtol: float) -> bool:
    """Whether ``coef`` is +-1, +-2 or +-1/2 (to ``rtol``)."""
    return any(abs(abs(coef) - c) <= max(rtol, 1e-9) * c for c in (1.0, 2.0, 0.5))
