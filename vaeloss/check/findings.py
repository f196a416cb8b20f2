"""The findings catalogue of ``vaeloss check``: each with a code, severity, line and fix."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from vaeloss.algebra import Monomial

if TYPE_CHECKING:
    from vaeloss.check.result import CheckReport

__all__ = ["CODES", "Finding", "build_findings", "build_fix"]

Severity = Literal["error", "warning", "info"]

CODES: dict[str, Severity] = {
    "beta-depends-on-batch-size": "error",
    "beta-depends-on-data-dim": "warning",
    "beta-depends-on-latent-dim": "warning",
    "deprecated-reduction-argument": "warning",
    "kl-wrong-sign": "error",
    "kl-constant-offset": "warning",
    "kl-not-gaussian": "warning",
    "recon-not-a-likelihood": "warning",
    "not-a-fixed-objective": "warning",
    "non-finite-at-edges": "error",
    "no-gradient": "error",
    "gradient-cut-in-source": "info",
    "per-sample-output": "info",
    "bce-on-continuous-data": "info",
    "decoder-variance-scale": "warning",
    "expect-beta-mismatch": "error",
    "kl-factor-two": "info",
    "hard-coded-data-dim": "info",
}

_DIM_WORDS = {"B": "batch size", "D": "data dimension", "k": "latent dimension"}


@dataclass(frozen=True)
class Finding:
    """One finding: ``code`` from :data:`CODES`, the source line (or None), a plain message."""

    code: str
    severity: Severity
    message: str
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "line": self.line,
        }


def _first(lines: dict[str, list[int]], *keys: str) -> int | None:
    for key in keys:
        if lines.get(key):
            return lines[key][0]
    return None


def build_findings(r: CheckReport, lines: dict[str, list[int]], expect_beta: float | None) -> list[Finding]:
    """All findings of a report."""
    out: list[Finding] = []

    def add(code: str, message: str, line: int | None = None) -> None:
        out.append(Finding(code, CODES[code], message, line))

    beta = r.beta
    fit = r.fit
    if beta is not None:
        for dim in beta.depends_on():
            code = {
                "B": "beta-depends-on-batch-size",
                "D": "beta-depends-on-data-dim",
                "k": "beta-depends-on-latent-dim",
            }[dim]
            rf, kf = r.recon_factor, r.kl_factor
            assert rf is not None and kf is not None
            where = (
                f"the reconstruction term scales as {dim}^{getattr(rf, dim)} and the KL term "
                f"as {dim}^{getattr(kf, dim)}"
            )
            line = (
                _first(lines, "recon")
                if getattr(rf, dim) < getattr(kf, dim)
                else _first(lines, "kl", "recon")
            )
            add(
                code,
                f"the effective beta ({beta.formula()}) changes with the {_DIM_WORDS[dim]}: "
                f"{where}. The objective you train depends on {dim}.",
                line,
            )
    for line in lines.get("deprecated_reduction", []):
        add(
            "deprecated-reduction-argument",
            "size_average/reduce are deprecated; size_average=True averages over the batch *and* "
            "every data element. Use reduction='sum' (or 'none' and sum over data dims).",
            line,
        )
    if r.kl_factor is not None and r.kl_factor.coef < 0:
        add(
            "kl-wrong-sign",
            "the KL term enters with a negative sign: the loss rewards moving "
            "away from the prior. Use KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)).",
            _first(lines, "kl"),
        )
    scale = max(abs(r.constant), 1e-300)
    fits = fit["kl_residual"] < 1e-6 and fit["recon_residual"] < 1e-6
    if (
        fits
        and r.likelihood in ("bernoulli", "continuous_bernoulli")
        and fit["c_relative"] > 1e-6
        and scale > 1e-9
    ):
        add(
            "kl-constant-offset",
            f"the loss has a constant offset of {r.constant:.6g} (it is not "
            "zero for a perfect reconstruction at the prior): a KL missing its '1 +'? Harmless for "
            "gradients, but reported values are off.",
            _first(lines, "kl"),
        )
    if fit["kl_residual"] >= 1e-6:
        add(
            "kl-not-gaussian",
            "the latent part is not a multiple of the Gaussian KL to N(0, I) in any "
            f"parameterisation (best: {fit['kl']}, relative misfit {fit['kl_residual']:.2g}): "
            "free bits, annealing, a different prior or a KL on samples? No effective beta can be "
            "given for it.",
            _first(lines, "free_bits", "kl"),
        )
    if fit["recon_residual"] >= 1e-6:
        add(
            "recon-not-a-likelihood",
            "the reconstruction part is not a multiple of a Bernoulli, "
            "Gaussian or continuous-Bernoulli NLL (best: "
            f"{fit['recon']}, relative misfit {fit['recon_residual']:.2g}): L1, a perceptual term "
            "or a learned scale? No effective beta can be given for it.",
            _first(lines, "recon"),
        )
    if fit["recon_residual"] < 1e-6 and fit["kl_residual"] < 1e-6 and fit["verify_residual"] >= 1e-6:
        add(
            "not-a-fixed-objective",
            "each term fits on its own but not the two together on fresh "
            f"inputs (misfit {fit['verify_residual']:.2g}): a weight that depends on the values, "
            "or state kept between calls?",
            _first(lines, "return"),
        )
    for e in r.edges:
        add(
            "non-finite-at-edges",
            f"non-finite or failing at valid edge inputs: {e}. Clamp "
            "probabilities or use logits with binary_cross_entropy_with_logits.",
            _first(lines, "recon", "kl"),
        )
    g = r.gradients
    if not g.get("graph", True):
        add(
            "no-gradient",
            "the returned loss has no gradient at all (converted with .item(), "
            "float() or built from .detach()/.data): training would not move.",
            _first(lines, "gradient_cut", "return"),
        )
    else:
        for role, word in (
            ("recon", "reconstruction"),
            ("mu", "posterior mean"),
            ("scale", "posterior scale"),
        ):
            if not g.get(role, True):
                add(
                    "no-gradient",
                    f"no gradient reaches the {word} argument ({r.roles.get(role)}).",
                    _first(lines, "gradient_cut", "return"),
                )
    if g.get("graph", True) and all(g.get(x, True) for x in ("recon", "mu", "scale")):
        for line in lines.get("gradient_cut", []):
            add(
                "gradient-cut-in-source",
                "the source calls .item()/.detach()/.data here; the "
                "gradients still flow, but make sure this value is only logged.",
                line,
            )
    if r.output == "per_sample":
        add(
            "per-sample-output",
            "the function returns one value per sample; treated as averaged "
            "over the batch by the framework (as Keras does). If you sum it, multiply the "
            "effective beta's batch factor accordingly.",
            _first(lines, "return"),
        )
    if r.likelihood == "bernoulli":
        add(
            "bce-on-continuous-data",
            "binary cross-entropy is a normalised likelihood only for "
            "binary data; for grey levels in [0, 1] use the continuous Bernoulli "
            "(vaeloss.continuous_bernoulli_nll) or binarise the data.",
            _first(lines, "recon"),
        )
    if r.likelihood == "gaussian" and r.effective_beta is not None:
        var = r.effective_beta
        if var > 0.25 or var < 1e-4:
            what = (
                "larger than the variance of any data in [0, 1] (at most 0.25): the decoder "
                "noise explains the data away; expect blurry outputs and collapsed dims"
                if var > 0.25
                else "below 1e-4: the KL hardly counts; expect an unregularised latent space"
            )
            add(
                "decoder-variance-scale",
                f"this squared-error loss implies a decoder variance "
                f"sigma^2 = {var:.4g} (sigma = {var**0.5:.3g}) for data in [0, 1]: {what}.",
                _first(lines, "recon"),
            )
    if expect_beta is not None:
        actual = r.effective_beta
        if actual is None or abs(actual - expect_beta) > 1e-6 * max(abs(expect_beta), 1e-12):
            add(
                "expect-beta-mismatch",
                f"expected beta {expect_beta:g} but the loss has "
                f"{'no single beta' if actual is None else format(actual, '.6g')} at "
                f"B={r.sizes['B']}, D={r.sizes['D']}, k={r.sizes['k']}.",
                _first(lines, "return"),
            )
    if beta is not None and beta.coef == 2 and not beta.depends_on() and r.kl_weight_parameter is None:
        add(
            "kl-factor-two",
            "the KL term is exactly twice the Gaussian KL: a missing 0.5?",
            _first(lines, "kl"),
        )
    if r.data_dim_fixed:
        add(
            "hard-coded-data-dim",
            f"the function fails at other data dimensions (a hard-coded "
            f"{r.sizes['D']}?); its D-dependence was inferred from the coefficient.",
            _first(lines, "hard_coded_784", "recon"),
        )
    return out


def build_fix(r: CheckReport) -> str:
    """One concrete fix, in the user's own terms."""
    beta, value = r.beta, r.effective_beta
    if beta is None or value is None:
        return (
            "Write the loss as (reconstruction NLL summed over data dims + beta * KL summed "
            "over latent dims).mean() over the batch, so that it has one well-defined beta."
        )
    sizes = f"at B={r.sizes['B']}, D={r.sizes['D']}, k={r.sizes['k']}"
    if beta.depends_on():
        return (
            "Reduce both terms the same way: sum the reconstruction over data dims "
            "(reduction='none' then .sum(dim=-1)) and the KL over latent dims, then take "
            ".mean() over the batch; that is the ELBO (beta = 1) at every size. To keep your "
            f"code instead, multiply the KL term by {(1 / value):.4g} ({sizes}), "
            f"i.e. {(Monomial(Fraction(1)) / beta).formula()}."
        )
    if abs(value - 1) < 1e-9:
        return "None needed: this is the negative ELBO (beta = 1)."
    if r.kl_weight_parameter is not None:
        current = float(r.defaults.get(r.kl_weight_parameter, 1.0))
        return (
            f"This is a beta-VAE with beta = {value:.6g}. For the ELBO (beta = 1) set "
            f"{r.kl_weight_parameter}={current / value:.6g}."
        )
    return (
        f"This is a beta-VAE with beta = {value:.6g}. For the ELBO (beta = 1) multiply the KL "
        f"term by {1 / value:.6g}."
    )
