"""The result of a check: :class:`CheckReport`, and fitting exact monomials to probed factors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from vaeloss.algebra import Monomial

if TYPE_CHECKING:
    from vaeloss.check.findings import Finding

__all__ = ["CheckReport", "fit_monomial"]


@dataclass
class CheckReport:
    """Everything ``vaeloss check`` found, as data (``to_json`` gives the --json object)."""

    function: str
    path: str
    selected_because: str
    sizes: dict[str, int]
    roles: dict[str, str]
    input_shape: list[int]
    output: str
    likelihood: str | None
    decoder_output: str | None
    latent_parameterisation: str | None
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
    def beta(self) -> Monomial | None:
        if self.recon_factor is None or self.kl_factor is None or self.recon_factor.coef == 0:
            return None
        return self.kl_factor / self.recon_factor

    def _at(self, m: Monomial | None) -> float | None:
        return None if m is None else m.evaluate(**self.sizes)

    @property
    def effective_beta(self) -> float | None:
        return self._at(self.beta)

    @property
    def gradient_scale(self) -> float | None:
        v = self._at(self.recon_factor)
        return None if v is None else v * self.sizes["B"]

    @property
    def kl_weight_for_elbo(self) -> float | None:
        beta = self.effective_beta
        return None if beta is None or beta == 0 else 1.0 / beta

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    def to_json(self) -> dict[str, Any]:
        beta = self.beta
        grad = None if self.recon_factor is None else self.recon_factor * Monomial(Fraction(1), B=1)
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
            "effective_beta_formula": None if beta is None else beta.formula(),
            "implied_decoder_variance": self.effective_beta if self.likelihood == "gaussian" else None,
            "gradient_scale": self.gradient_scale,
            "gradient_scale_formula": None if grad is None else grad.formula(),
            "kl_weight_for_elbo": self.kl_weight_for_elbo,
            "kl_weight_for_elbo_formula": None if beta is None else (Monomial(Fraction(1)) / beta).formula(),
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
