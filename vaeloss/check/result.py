"""The result of a check: :class:`Finding`, :class:`CheckReport`, and fitting exact monomials
to probed factors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from vaeloss.objective.algebra import Monomial
from vaeloss.objective.convention import Convention, Output

if TYPE_CHECKING:  # the types only: the CLI process of check does not import torch
    from vaeloss.objective.kl import LatentParameterisation
    from vaeloss.objective.likelihoods import DecoderOutput, Likelihood

__all__ = ["TOLERANCE", "CheckReport", "Finding", "Severity", "fit_monomial"]

Severity = Literal["error", "warning", "info"]

TOLERANCE = 1e-6
"""Relative misfit below which a term is a multiple of a reference (a likelihood, the KL)."""


@dataclass(frozen=True)
class Finding:
    """One finding: a registered ``code`` (:mod:`vaeloss.check.findings`), its severity, a plain
    message and the source line it points at (or None)."""

    code: str
    severity: Severity
    message: str
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "line": self.line}


@dataclass
class CheckReport:
    """Everything ``vaeloss check`` found, as data (``to_json`` gives the --json object).

    The factors found for each term are kept as fitted; every quantity derived from them
    (effective beta, gradient scale, KL weight for the ELBO) comes from :attr:`objective`.
    """

    function: str
    path: str
    selected_because: str
    sizes: dict[str, int]
    roles: dict[str, str]
    input_shape: list[int]
    output: Output
    likelihood: Likelihood | None
    decoder_output: DecoderOutput | None
    latent_parameterisation: LatentParameterisation | None
    recon_factor: Monomial | None
    kl_factor: Monomial | None
    constant: float
    defaults: dict[str, Any]
    kl_weight_parameter: str | None
    data_dim_fixed: bool
    gradients: dict[str, bool]
    edges: list[str]
    findings: list[Finding] = field(default_factory=list)
    fix: str = ""
    fit: dict[str, Any] = field(default_factory=dict)

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
        obj = self.objective
        return None if obj is None else obj.effective_beta(**self.sizes)

    @property
    def gradient_scale(self) -> float | None:
        obj = self.objective
        return None if obj is None else obj.gradient_scale(**self.sizes)

    @property
    def kl_weight_for_elbo(self) -> float | None:
        obj = self.objective
        if obj is None or obj.kl_base.coef == 0:
            return None
        return obj.kl_weight_for(1.0, **self.sizes)

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    def to_json(self) -> dict[str, Any]:
        obj = self.objective
        no_kl = obj is None or obj.kl_base.coef == 0
        return {
            "function": self.function,
            "path": self.path,
            "selected_because": self.selected_because,
            "likelihood": self.likelihood,
            "decoder_output": self.decoder_output,
            "latent_parameterisation": self.latent_parameterisation,
            "output": self.output,
            "roles": self.roles,
            "input_shape": self.input_shape,
            "sizes": self.sizes,
            "recon_factor_formula": None if self.recon_factor is None else self.recon_factor.formula(),
            "kl_factor_formula": None if self.kl_factor is None else self.kl_factor.formula(),
            "effective_beta": self.effective_beta,
            "effective_beta_formula": None if obj is None else obj.effective_beta_formula,
            "implied_decoder_variance": None if obj is None else obj.implied_decoder_variance(**self.sizes),
            "gradient_scale": self.gradient_scale,
            "gradient_scale_formula": None if obj is None else obj.gradient_scale_formula,
            "kl_weight_for_elbo": self.kl_weight_for_elbo,
            "kl_weight_for_elbo_formula": None if no_kl or obj is None else obj.kl_weight_formula_for_elbo(),
            "kl_weight_parameter": self.kl_weight_parameter,
            "defaults": self.defaults,
            "data_dim_fixed": self.data_dim_fixed,
            "findings": [f.to_json() for f in self.findings],
            "fix": self.fix,
        }


def _exponent(a1: float, a2: float) -> int | None:
    if a1 == 0 or a2 == 0 or (a1 > 0) != (a2 > 0):
        return None
    e = math.log2(a2 / a1)
    return round(e) if abs(e - round(e)) < 1e-6 else None


def _simple(value: float) -> Fraction:
    frac = Fraction(value).limit_denominator(10**7)
    if frac != 0 and abs(float(frac) - value) <= 1e-9 * abs(value):
        return frac
    return Fraction(value)


def _complexity(f: Fraction) -> int:
    return len(str(abs(f.numerator))) + len(str(f.denominator))


def fit_monomial(
    value: float, fits: dict[str, Any], key: str, sizes: dict[str, int], infer_d: bool
) -> Monomial | None:
    exps: dict[str, int] = {}
    for name in ("B", "D", "k"):
        fit = fits.get(name, {})
        if "error" in fit:
            exps[name] = 0
            continue
        e = _exponent(value, fit[key])
        if e is None:
            return None
        exps[name] = e
    coef = value / (sizes["B"] ** exps["B"] * sizes["D"] ** exps["D"] * sizes["k"] ** exps["k"])
    if infer_d:
        best = min(range(-2, 3), key=lambda p: (_complexity(_simple(coef / sizes["D"] ** p)), abs(p)))
        exps["D"] = best
        coef = coef / sizes["D"] ** best
    return Monomial(_simple(coef), exps["B"], exps["D"], exps["k"])
