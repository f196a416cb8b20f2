"""What a named convention really optimises, as a dict and as text (``vaeloss explain``)."""

from __future__ import annotations

from typing import Any

from vaeloss.objective.convention import Convention
from vaeloss.objective.presets import get_preset, preset_names

__all__ = ["explain_convention", "format_explanation", "format_table"]


def _g(value: float) -> str:
    return f"{value:,.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def explain_convention(name: str, *, B: int = 128, D: int = 784, k: int = 20) -> dict[str, Any]:
    """Everything ``vaeloss explain`` reports about a preset, as plain data.

    >>> explain_convention("keras_blog", B=128, D=784, k=20)["effective_beta"]
    39.2
    """
    preset = get_preset(name)
    conv: Convention = preset.convention
    beta = conv.effective_beta(B=B, D=D, k=k)
    return {
        "convention": conv.name,
        "description": conv.description,
        "source": conv.source,
        "code": preset.snippet,
        "likelihood": conv.likelihood,
        "output": conv.output,
        "kl_weight": float(conv.kl_weight),
        "recon_factor_formula": conv.recon_factor.formula(),
        "kl_factor_formula": conv.kl_factor.formula(),
        "effective_beta_formula": conv.effective_beta_formula,
        "effective_beta": beta,
        "depends_on": list(conv.beta_monomial.depends_on()),
        "implied_decoder_variance": conv.implied_decoder_variance(B=B, D=D, k=k),
        "gradient_scale_formula": conv.gradient_scale_formula,
        "gradient_scale": conv.gradient_scale(B=B, D=D, k=k),
        "kl_weight_for_elbo_formula": conv.kl_weight_formula_for_elbo(),
        "kl_weight_for_elbo": conv.kl_weight_for(1.0, B=B, D=D, k=k),
        "sizes": {"B": B, "D": D, "k": k},
    }


_SIZE_WORDS = {"B": "batch size", "D": "data dimension", "k": "latent dimension"}


def format_explanation(info: dict[str, Any]) -> str:
    """Human-readable text of :func:`explain_convention`'s result."""
    s = info["sizes"]
    at = f"B={s['B']}, D={s['D']}, k={s['k']}"
    ref = "unit-variance Gaussian NLL" if info["likelihood"] == "gaussian" else "Bernoulli NLL"
    lines = [
        f"convention: {info['convention']}  ({info['description']})",
        f"  found in: {info['source']}",
        f"  code:     {info['code']}",
        f"likelihood: {info['likelihood']}  (output: {info['output']})",
        f"loss = {info['recon_factor_formula']} * sum_batch,data({ref})"
        f" + {info['kl_factor_formula']} * sum_batch,latent(KL) + const",
        f"effective beta: {info['effective_beta_formula']} = {_g(info['effective_beta'])} at {at}",
    ]
    if info["implied_decoder_variance"] is not None:
        lines.append(f"implied decoder variance at beta=1: sigma^2 = {_g(info['implied_decoder_variance'])}")
    lines += [
        f"gradient scale vs per-sample ELBO: {info['gradient_scale_formula']} = {_g(info['gradient_scale'])}",
        f"KL multiplier for the true ELBO (beta=1): {info['kl_weight_for_elbo_formula']}"
        f" = {_g(info['kl_weight_for_elbo'])}",
    ]
    for dep in info["depends_on"]:
        lines.append(f"note: the effective beta changes with the {_SIZE_WORDS[dep]} ({dep}).")
    return "\n".join(lines)


def format_table(*, B: int, D: int, k: int) -> str:
    """One line per preset: name, effective beta formula and value, gradient scale."""
    rows = [("convention", "likelihood", "beta formula", "beta", "grad scale")]
    for name in preset_names():
        i = explain_convention(name, B=B, D=D, k=k)
        rows.append(
            (
                name,
                i["likelihood"],
                i["effective_beta_formula"],
                _g(i["effective_beta"]),
                i["gradient_scale_formula"],
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    out.append(f"(at B={B}, D={D}, k={k}; beta relative to the per-sample negative ELBO)")
    return "\n".join(out)
