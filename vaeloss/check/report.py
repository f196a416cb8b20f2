"""Human-readable text of a :class:`~vaeloss.check.runner.CheckReport`."""

from __future__ import annotations

from vaeloss.check.inline import is_inline_name
from vaeloss.check.result import CheckReport
from vaeloss.objective.algebra import Monomial

__all__ = ["format_report"]

_COARSE = {
    "keras": "Keras reduces the probe's float64 values in float32",
    "mlx": "MLX computes exp and log on the probe's float64 values to about float32's precision",
    "tensorflow": "TensorFlow ran the loss on float32 tensors (it makes float32 tensors of its own, which "
    "TensorFlow does not mix with float64)",
}
"""Why a framework's factors are known only to float32's precision (see the backends)."""

_LIK: dict[tuple[str | None, str | None], str] = {
    ("bernoulli", "probabilities"): "Bernoulli NLL (binary cross-entropy on probabilities)",
    ("bernoulli", "logits"): "Bernoulli NLL (binary cross-entropy on logits)",
    ("gaussian", "mean"): "Gaussian NLL (squared error; factor relative to sigma = 1)",
    ("gaussian", "logits"): "Gaussian NLL of sigmoid(output) (squared error after a sigmoid; sigma = 1)",
    ("continuous_bernoulli", "probabilities"): "continuous-Bernoulli NLL (probabilities)",
    ("continuous_bernoulli", "logits"): "continuous-Bernoulli NLL (logits)",
    ("laplace", "mean"): "Laplace NLL (absolute error, L1; factor relative to scale 1)",
    ("multinomial", "logits"): "multinomial NLL over the data dims (log-softmax of the output)",
    ("multinomial", "probabilities"): "multinomial NLL over the data dims (log of probabilities)",
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
    """How a term's factor reads as reductions: a sum has the dim's power 0, a mean -1, and what
    is left over is a power of the dim (``rec * x[0].numel()``: a sum times D).

    >>> from fractions import Fraction
    >>> _reductions(Monomial(Fraction(1), B=0, D=1, k=0), "D")
    'sum over data dims times D, sum over batch'
    >>> _reductions(Monomial(Fraction(1), B=-2, D=-1, k=0), "D")
    'mean over data dims, mean over batch divided by B'
    """
    parts = []
    for dim, word in ((inner, "data dims" if inner == "D" else "latent dims"), ("B", "batch")):
        e = getattr(m, dim)
        if e in (0, -1):
            parts.append(f"{'mean' if e == -1 else 'sum'} over {word}")
        elif e > 0:
            parts.append(f"sum over {word} times {dim}" + (f"^{e}" if e > 1 else ""))
        else:
            parts.append(f"mean over {word} divided by {dim}" + (f"^{-e - 1}" if e < -2 else ""))
    return ", ".join(parts)


def _returns(r: CheckReport) -> str:
    p = r.probe
    read = f" (read from {p.read_as})" if p.read_as and p.read_as not in ("a tuple", "") else ""
    if p.components is not None:
        rec, kl = (p.positions[i] for i in p.components)
        return f"its terms apart: value {rec} the reconstruction, value {kl} the KL{read}"
    if len(p.fits) > 1 and p.total is not None:
        return f"several values; value {p.positions[p.total]} is the loss{read}"
    return f"{'one value per sample' if r.output == 'per_sample' else 'a scalar'}{read}"


_NOT_RUN = {
    "a top-level loop is not run": "loop",
    "a top-level `with` block is not run": "`with` block",
    "the `if __name__ == '__main__':` block is not run": "main guard",
    "a top-level call or expression is not run": "call",
}


def _skipped(r: CheckReport) -> list[str]:
    """What of the file was not run when it was loaded: a summary of the statements left out
    by rule, and each statement that failed or ran too long."""
    if not r.skipped:
        return []
    by_kind: dict[str, list[str]] = {}
    failed = []
    for s in r.skipped:
        where = r.where(s.line) or f"line {s.line}"
        kind = _NOT_RUN.get(s.reason)
        if kind is None:
            failed.append(f"{where} `{s.code}`: {s.reason}")
        else:
            by_kind.setdefault(kind, []).append(where)
    lines = []
    if by_kind:
        parts = [
            ("the" if kind == "main guard" else str(len(w)))
            + f" {kind}{'s' if len(w) > 1 and kind != 'main guard' else ''} ({', '.join(w[:4])}"
            + f"{', ...' if len(w) > 4 else ''})"
            for kind, w in by_kind.items()
        ]
        lines.append("  loaded without running: " + "; ".join(parts))
    for text in failed[:4]:
        lines.append(f"  skipped when loading: {text}")
    if len(failed) > 4:
        lines.append(f"  ... and {len(failed) - 4} more skipped statements (see --json)")
    return lines


def _observed(r: CheckReport) -> list[str]:
    """What the run of the user's step did and showed (run mode)."""
    o = r.observed
    if o is None:
        return []
    ran = o.summary()
    if o.failure is not None:
        lines = [f"  ran: {ran}", f"  so the loss was called instead, at {_at(r)}"]
        if not o.sizes:
            return lines
    elif ran is None:
        lines = [f"  sizes: read from {o.ran}"]
    else:
        lines = [f"  ran: {ran} ({o.seconds:.1f} s)"]
    lines += [f"  replaced: {text}" for text in o.replaced]
    for name in ("B", "D", "k"):
        origin = o.origin(name)
        if name in r.given_sizes:
            origin = "given"
        elif origin is None:
            origin = "not seen in the run: vaeloss's default"
        lines.append(f"  {name}={r.sizes[name]}: {origin}")
    return lines


_SIZE_FLAGS = {"B": "-B", "D": "-D", "k": "-k"}


def _default_sizes(r: CheckReport) -> list[str]:
    """The sizes that are vaeloss's defaults (none given, none read from the file)."""
    if r.observed is not None and r.observed.sizes:
        return []
    decided = {"D", "k"} if r.through_model else ({"D"} if r.data_dim_fixed else set())
    unset = [n for n in ("B", "D", "k") if n not in r.given_sizes and n not in decided]
    if not unset:
        return []
    shown = ", ".join(f"{n}={r.sizes[n]}" for n in unset)
    flags = " ".join(f"{_SIZE_FLAGS[n]} N" for n in unset)
    return [f"  sizes: {shown} are vaeloss's defaults, not read from your file: give yours with {flags}"]


def _at(r: CheckReport) -> str:
    s = r.sizes
    return f"B={s['B']}, D={s['D']}, k={s['k']}"


def _header(r: CheckReport) -> list[str]:
    """What was checked, how it was called, what was not run, the other candidates."""
    s = r.sizes
    roles = ", ".join(f"{where}={role}" for role, where in r.roles.items())
    shape = "x".join(map(str, r.input_shape))
    inline = is_inline_name(r.function)
    shown = r.path if inline else f"{r.path}:{r.function}"
    lines = [f"{shown}  ({r.selected_because})", f"  checked: {r.described}"]
    lines.append(f"  framework: {r.framework} (told by the file's imports)")
    if r.supplied:
        lines.append(f"  Keras 2 names this Keras lacks, supplied from Keras 3: {', '.join(r.supplied)}")
    if r.coarse:
        tolerance = max(r.probe.recon_fit.tolerance, r.probe.kl_fit.tolerance)
        lines.append(
            f"  precision: {_COARSE.get(r.framework.split()[0], 'this framework computes in float32')}, "
            f"so the factors "
            f"are found to {tolerance:.1e} and given by their formulas"
        )
    if r.framework == "numpy":
        lines.append("  gradients not checked: NumPy has none (a loss must be differentiable to train)")
    if not r.through_model:
        flat = " (the reconstruction flat, [B, D])" if r.probe.recon_flat else ""
        lines.append(f"  arguments: {roles}; inputs [B, {shape}]{flat}; returns {_returns(r)}")
    if r.defaults:
        used = ", ".join(f"{k}={v!r}" for k, v in r.defaults.items())
        lines.append(f"  parameters used: {used}")
    if r.through_model:
        m = r.through_model
        shape = "x".join(map(str, m.input_shape))
        draws = f", {m.draws} draws per sample, [S, B, ...]" if m.draws else ""
        lines.append(
            f"  probed through the model: the outputs of {m.mu} (mu), {m.scale} (scale) and "
            f"{m.recon} (decoder{draws}) replaced; batches of shape [B, {shape}]; returns {_returns(r)}"
        )
        lines.append(f"  the model decides D={s['D']} and k={s['k']}: the formulas hold at them")
    lines += _observed(r)
    lines += _default_sizes(r)
    lines += _skipped(r)
    for other in r.others:
        hint = "" if other.kind == "unprobed" else f"; check it with 'vaeloss check {r.path}:{other.name}'"
        lines.append(f"  also a candidate: {other.described or other.name} ({other.summary}){hint}")
    return lines


def _recon_lines(r: CheckReport) -> list[str]:
    fit = r.probe.recon_fit
    if fit.recon_ok and not fit.a:
        return [
            "reconstruction: none (the value does not change with the reconstruction, by 1e-12 of "
            "itself or more)"
        ]
    if r.recon_factor is not None and r.decoder_distribution:
        return [
            f"reconstruction: the NLL of the decoder distribution it is given ({r.decoder_distribution}"
            ".log_prob): your decoder's likelihood (a Bernoulli stood in for it here)",
            f"                {_reductions(r.recon_factor, 'D')}; factor {r.recon_factor.formula()}",
        ]
    if r.recon_factor is not None:
        key = (r.likelihood, r.decoder_output)
        return [
            f"reconstruction: {_LIK.get(key, f'{r.likelihood} ({r.decoder_output})')}",
            f"                {_reductions(r.recon_factor, 'D')}; factor {r.recon_factor.formula()}",
        ]
    if fit.recon_ok and fit.a:
        key = (fit.likelihood, fit.decoder_output)
        return [f"reconstruction: {_LIK.get(key, str(key))}; factor {_g(fit.a)} at {_at(r)}"]
    return ["reconstruction: not a multiple of any supported NLL (see findings)"]


def _kl_lines(r: CheckReport) -> list[str]:
    fit = r.probe.kl_fit
    kind = "Monte-Carlo estimate of the " if r.probe.monte_carlo else ""
    if fit.kl_ok and not fit.b:
        return [
            "KL:             none (the value does not change with mu or the posterior scale, by 1e-12 "
            "of itself or more)"
        ]
    if r.kl_factor is not None:
        return [
            f"KL:             {kind}Gaussian KL to N(0, I) from {r.latent_parameterisation}",
            f"                {_reductions(r.kl_factor, 'k')}; factor {r.kl_factor.formula()}",
        ]
    if fit.kl_ok and fit.b:
        return [
            f"KL:             {kind}Gaussian KL to N(0, I) from {fit.parameterisation}; "
            f"factor {_g(fit.b)} at {_at(r)}"
        ]
    return ["KL:             not a multiple of the Gaussian KL (see findings)"]


def _beta_lines(r: CheckReport) -> list[str]:
    obj, beta = r.objective, r.effective_beta
    if beta is None:
        return ["effective beta: none (the loss is not a*NLL + b*KL + const)"]
    s = r.sizes
    fixed = (
        f" (the loss runs only at {', '.join(f'{d}={s[d]}' for d in r.fixed_dims)})"
        if r.fixed_dims and not r.through_model
        else ""
    )
    shown = _both(obj.beta_monomial, beta) if obj is not None else f"{_g(beta)} (at these sizes only)"
    lines = [f"effective beta: {shown} at {_at(r)}{fixed}  (relative to the per-sample negative ELBO)"]
    if r.likelihood == "gaussian":
        lines.append(f"implied decoder variance at beta = 1: sigma^2 = {_g(beta)}")
    grad = r.gradient_scale
    if grad is not None:
        shown_g = _both(obj.gradient_scale_monomial, grad) if obj is not None else _g(grad)
        lines.append(f"gradient scale: {shown_g}  (loss = scale * per-sample ELBO_beta + const)")
    weight = r.kl_weight_for_elbo
    if weight is not None:
        shown_w = _both(obj.kl_weight_for_elbo_monomial, weight) if obj is not None else _g(weight)
        lines.append(f"KL multiplier for the true ELBO (beta = 1): {shown_w}")
    return lines


def _finding_lines(r: CheckReport) -> list[str]:
    if not r.findings:
        return ["findings: none"]
    lines = ["findings:"]
    for f in r.findings:
        where = f" ({f.where})" if f.where else ""
        lines.append(f"  {f.severity:<7} {f.code}{where}: {f.message}")
    return lines


def format_report(r: CheckReport) -> str:
    """The report as text: terms, effective beta, findings with lines, and the fix."""
    lines = [*_header(r), "", *_recon_lines(r), *_kl_lines(r), *_beta_lines(r), "", *_finding_lines(r)]
    return "\n".join([*lines, "", f"fix: {r.fix}"])
