"""Human-readable text of a :class:`~vaeloss.check.runner.CheckReport`."""

from __future__ import annotations

from vaeloss.check.result import CheckReport
from vaeloss.objective.algebra import Monomial

__all__ = ["format_report"]

_LIK: dict[tuple[str | None, str | None], str] = {
    ("bernoulli", "probabilities"): "Bernoulli NLL (binary cross-entropy on probabilities)",
    ("bernoulli", "logits"): "Bernoulli NLL (binary cross-entropy on logits)",
    ("gaussian", "mean"): "Gaussian NLL (squared error; factor relative to sigma = 1)",
    ("continuous_bernoulli", "probabilities"): "continuous-Bernoulli NLL (probabilities)",
    ("continuous_bernoulli", "logits"): "continuous-Bernoulli NLL (logits)",
}


def _g(v: float) -> str:
    return f"{v:,.6g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4g}"


def _both(m: Monomial, value: float) -> str:
    """``formula = value``, or just the value when the formula is that number."""
    shown = _g(value)
    return (
        shown
        if m.formula() == shown or not m.depends_on() and m.coef.denominator == 1
        else (f"{m.formula()} = {shown}")
    )


def _reductions(m: Monomial, inner: str) -> str:
    parts = []
    for dim, word in ((inner, "data dims" if inner == "D" else "latent dims"), ("B", "batch")):
        e = getattr(m, dim)
        parts.append(
            f"{'mean' if e == -1 else 'sum'} over {word}"
            if e in (0, -1)
            else f"sum over {word} times {dim}^{e + 1}"
        )
    return ", ".join(parts)


def format_report(r: CheckReport) -> str:
    """The report as text: terms, effective beta, findings with lines, and the fix."""
    s = r.sizes
    at = f"B={s['B']}, D={s['D']}, k={s['k']}"
    roles = ", ".join(f"{'args[' + v[1:] + ']' if v.startswith('*') else v}={k}" for k, v in r.roles.items())
    shape = "x".join(map(str, r.input_shape))
    lines = [
        f"{r.path}:{r.function}  ({r.selected_because})",
        f"  arguments: {roles}; inputs [B, {shape}]; output: {r.output}",
    ]
    if r.defaults:
        used = ", ".join(f"{k}={v!r}" for k, v in r.defaults.items())
        lines.append(f"  parameters used: {used}")
    lines.append("")
    if r.recon_factor is not None:
        key = (r.likelihood, r.decoder_output)
        lines.append(f"reconstruction: {_LIK.get(key, f'{r.likelihood} ({r.decoder_output})')}")
        lines.append(f"                {_reductions(r.recon_factor, 'D')}; factor {r.recon_factor.formula()}")
    else:
        lines.append("reconstruction: not a multiple of any supported NLL (see findings)")
    if r.kl_factor is not None:
        lines.append(f"KL:             Gaussian KL to N(0, I) from {r.latent_parameterisation}")
        lines.append(f"                {_reductions(r.kl_factor, 'k')}; factor {r.kl_factor.formula()}")
    else:
        lines.append("KL:             not a multiple of the Gaussian KL (see findings)")
    obj = r.objective
    if obj is not None:
        beta = obj.effective_beta(**s)
        lines.append(
            f"effective beta: {_both(obj.beta_monomial, beta)} at {at}"
            "  (relative to the per-sample negative ELBO)"
        )
        variance = obj.implied_decoder_variance(**s)
        if variance is not None:
            lines.append(f"implied decoder variance at beta = 1: sigma^2 = {_g(variance)}")
        grad = obj.gradient_scale(**s)
        lines.append(
            f"gradient scale: {_both(obj.gradient_scale_monomial, grad)}  "
            "(loss = scale * per-sample ELBO_beta + const)"
        )
        if r.kl_weight_for_elbo is not None:
            lines.append(
                "KL multiplier for the true ELBO (beta = 1): "
                f"{_both(obj.kl_weight_for_elbo_monomial, r.kl_weight_for_elbo)}"
            )
    else:
        lines.append("effective beta: none (the loss is not a*NLL + b*KL + const)")
    lines.append("")
    if r.findings:
        lines.append("findings:")
        for f in r.findings:
            where = f" (line {f.line})" if f.line else ""
            lines.append(f"  {f.severity:<7} {f.code}{where}: {f.message}")
    else:
        lines.append("findings: none")
    lines.append("")
    lines.append(f"fix: {r.fix}")
    return "\n".join(lines)
