"""The findings of ``vaeloss check``: one small rule per finding code.

Each rule is registered with its code and severity by :func:`rule`; :data:`CODES` is derived
from the registry. A rule reads the :class:`~vaeloss.check.result.CheckReport` and the
:class:`Context` (source lines of constructs, ``--expect-beta``) and yields
``(message, line)`` pairs, one per finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vaeloss.check.result import ROUNDING_CAP, TOLERANCE, CheckReport, Finding, Severity

__all__ = ["CODES", "HELP", "Context", "build_findings", "build_fix", "rule"]

Found = Iterator[tuple[str, int | None]]
Rule = Callable[[CheckReport, "Context"], Found]

_RULES: dict[str, tuple[Severity, Rule]] = {}


@dataclass(frozen=True)
class Context:
    """What rules need beside the report: line numbers of constructs (inside the loss and what
    it calls) by kind, the ``--expect-beta`` value, and how to show a line."""

    lines: dict[str, list[int]]
    expect_beta: float | None = None
    where: Callable[[int | None], str | None] = lambda line: None if line is None else f"line {line}"

    def first(self, *keys: str) -> int | None:
        """The first line of the first kind in ``keys`` that the source has."""
        for key in keys:
            if self.lines.get(key):
                return self.lines[key][0]
        return None


def rule(code: str, severity: Severity) -> Callable[[Rule], Rule]:
    """Register a rule for finding ``code`` with ``severity``; its docstring is the code's help
    text (SARIF's rule help, ``vaeloss check --help``'s list)."""

    def register(fn: Rule) -> Rule:
        if not (fn.__doc__ or "").strip():
            raise TypeError(f"Expected a docstring (the help text) on the rule of {code!r}")
        _RULES[code] = (severity, fn)
        return fn

    return register


_DIM_WORDS = {"B": "batch size", "D": "data dimension", "k": "latent dimension"}


def _depends(r: CheckReport, ctx: Context, dim: str) -> Found:
    beta, rf, kf = r.beta, r.recon_factor, r.kl_factor
    if beta is None or rf is None or kf is None or dim not in beta.depends_on():
        return
    where = (
        f"the reconstruction term scales as {dim}^{getattr(rf, dim)} and the KL term as "
        f"{dim}^{getattr(kf, dim)}"
    )
    line = ctx.first("recon") if getattr(rf, dim) < getattr(kf, dim) else ctx.first("kl", "recon")
    inferred = (
        f" (read from the factors' values at the fixed D={r.sizes['D']}: the loss cannot be called at "
        "another D)"
        if dim == "D" and r.data_dim_fixed
        else ""
    )
    yield (
        f"the effective beta ({beta.formula()}) changes with the {_DIM_WORDS[dim]}: {where}{inferred}. "
        f"The objective you train depends on {dim}.",
        line,
    )


@rule("beta-depends-on-batch-size", "error")
def _depends_on_batch(r: CheckReport, ctx: Context) -> Found:
    """The effective beta changes with the batch size B (mean over some elements, sum over others):
    the objective changes when B does, and a KL weight tuned at one B is wrong at another. Reduce
    both terms over the batch the same way."""
    return _depends(r, ctx, "B")


@rule("beta-depends-on-data-dim", "warning")
def _depends_on_data_dim(r: CheckReport, ctx: Context) -> Found:
    """The effective beta changes with the data dimension D (the reconstruction averaged over
    pixels, the KL summed): at MNIST's D = 784 it is hundreds of times off. Sum the reconstruction
    over data dims."""
    return _depends(r, ctx, "D")


@rule("beta-depends-on-latent-dim", "warning")
def _depends_on_latent_dim(r: CheckReport, ctx: Context) -> Found:
    """The effective beta changes with the latent dimension k (the KL averaged over latent dims): a
    larger latent space is regularised less. Sum the KL over latent dims."""
    return _depends(r, ctx, "k")


_REDUCTIONS = {
    "size_average=True": "averages over the batch *and* every data element, as reduction='mean' does",
    "size_average=False": "sums over the batch and every data element, as reduction='sum' does",
    "reduce=False": "returns one value per element, as reduction='none' does",
    "reduce=True": "reduces as size_average says (it is the default)",
}


@rule("deprecated-reduction-argument", "warning")
def _deprecated_reduction(r: CheckReport, ctx: Context) -> Found:
    """size_average/reduce are deprecated PyTorch arguments; size_average=True averages over the
    batch and every data element. Use reduction= instead."""
    for key, lines in ctx.lines.items():
        if not key.startswith("deprecated:"):
            continue
        usage = key.partition(":")[2]
        meaning = _REDUCTIONS.get(usage, "is read by old PyTorch rules")
        replacement = {"size_average=True": "'mean'", "size_average=False": "'sum'", "reduce=False": "'none'"}
        fix = f" Use reduction={replacement[usage]} instead." if usage in replacement else " Use reduction=."
        for line in lines:
            yield f"size_average/reduce are deprecated; {usage} {meaning}.{fix}", line


@rule("kl-wrong-sign", "error")
def _kl_wrong_sign(r: CheckReport, ctx: Context) -> Found:
    """The KL term enters the loss with a negative sign, so training moves the posterior away from
    the prior. Use KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar))."""
    if r.kl_factor is not None and r.kl_factor.coef < 0 and not _is_elbo(r):
        yield (
            "the KL term enters with a negative sign: the loss rewards moving away from the prior. "
            "Use KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)).",
            ctx.first("kl"),
        )


def _is_elbo(r: CheckReport) -> bool:
    """Both terms negative: the value is the ELBO itself (to maximise), not a loss."""
    return (
        r.recon_factor is not None
        and r.kl_factor is not None
        and r.recon_factor.coef < 0
        and r.kl_factor.coef < 0
    )


@rule("returns-the-elbo", "warning")
def _returns_the_elbo(r: CheckReport, ctx: Context) -> Found:
    """The value is the ELBO itself (both terms negative), to be maximised: minimising it as a loss
    trains the model to be worse. Train on its negative."""
    if _is_elbo(r):
        yield (
            "the value is the ELBO itself (both terms enter with a negative sign): maximise it, or "
            "train on its negative; the effective beta below is the same either way.",
            ctx.first("return"),
        )


def _fits(r: CheckReport) -> bool:
    return r.probe.recon_fit.recon_ok and r.probe.kl_fit.kl_ok


@rule("kl-constant-offset", "warning")
def _kl_constant_offset(r: CheckReport, ctx: Context) -> Found:
    """The loss has a constant offset (a KL missing its '1 +'?): harmless for gradients, but the
    values reported are off."""
    fit = r.probe.kl_fit
    bernoulli = r.likelihood in ("bernoulli", "continuous_bernoulli")
    if (
        _fits(r)
        and bernoulli
        and r.probe.total is not None
        and fit.c_relative > fit.tolerance
        and abs(fit.c) > 1e-9
    ):
        yield (
            f"the loss has a constant offset of {fit.c:.6g} (it is not zero for a perfect "
            "reconstruction at the prior): a KL missing its '1 +'? Harmless for gradients, but "
            "reported values are off.",
            ctx.first("kl"),
        )


@rule("term-below-rounding", "warning")
def _term_below_rounding(r: CheckReport, ctx: Context) -> Found:
    """One term changes the loss so little next to the other (a KL weighted 1e-3 and averaged,
    beside a reconstruction summed and multiplied by D) that float64's rounding of the loss hides
    its form: no effective beta can be measured, and the term has next to no effect on training."""
    kl, recon = r.probe.kl_fit, r.probe.recon_fit
    for term, ok, rounding in (
        ("KL", kl.kl_ok, kl.kl_rounding),
        ("reconstruction", recon.recon_ok, recon.recon_rounding),
    ):
        if not ok and rounding > ROUNDING_CAP:
            yield (
                f"the {term} term changes the loss by so little next to its value that rounding alone "
                f"could misfit it by {rounding:.2g} (relative; the likelihoods and parameterisations "
                f"differ by 1e-2): its form and factor cannot be measured, and no effective beta can be "
                f"given. Such a term has next to no effect on training: is its weight or reduction "
                f"what you meant?",
                ctx.first("kl" if term == "KL" else "recon"),
            )


@rule("kl-not-gaussian", "warning")
def _kl_not_gaussian(r: CheckReport, ctx: Context) -> Found:
    """The latent part is not a multiple of the Gaussian KL to N(0, I) (free bits, annealing,
    another prior, a flow): no effective beta can be given."""
    fit = r.probe.kl_fit
    if not fit.kl_ok and fit.kl_rounding <= ROUNDING_CAP:
        sampled = (
            f"; it is sampled, and its average over many draws is {fit.kl_zscore:.1f} standard errors from "
            "the best multiple of the Gaussian KL"
            if fit.monte_carlo
            else ""
        )
        yield (
            "the latent part is not a multiple of the Gaussian KL to N(0, I) in any "
            f"parameterisation (best: {fit.parameterisation}, relative misfit {fit.kl_residual:.2g}"
            f"{sampled}): free bits, annealing, a different prior, or a KL on samples of a "
            "non-Gaussian posterior (a flow)? No effective beta can be given for it.",
            ctx.first("free_bits", "kl"),
        )


@rule("recon-not-a-likelihood", "warning")
def _recon_not_a_likelihood(r: CheckReport, ctx: Context) -> Found:
    """The reconstruction part is not a multiple of a Bernoulli, Gaussian, Laplace, multinomial or
    continuous-Bernoulli NLL (a perceptual term, a mixture?): no effective beta can be given."""
    fit = r.probe.recon_fit
    if not fit.recon_ok and fit.recon_rounding <= ROUNDING_CAP:
        yield (
            "the reconstruction part is not a multiple of a Bernoulli, Gaussian, Laplace (L1), "
            f"multinomial or continuous-Bernoulli NLL (best: {fit.recon}, relative misfit "
            f"{fit.recon_residual:.2g}): a perceptual term, a learned scale, a mixture? No "
            "effective beta can be given for it.",
            ctx.first("recon"),
        )


@rule("not-a-fixed-objective", "warning")
def _not_a_fixed_objective(r: CheckReport, ctx: Context) -> Found:
    """Each term fits on its own but not the two together on fresh inputs: a weight that depends on
    the values, or state kept between calls."""
    fit = r.probe.fits[r.probe.total] if r.probe.total is not None else None
    if fit is not None and _fits(r) and fit.verify_residual >= fit.tolerance:
        yield (
            "each term fits on its own but not the two together on fresh inputs (misfit "
            f"{fit.verify_residual:.2g}): a weight that depends on the values, or state kept "
            "between calls?",
            ctx.first("return"),
        )


@rule("non-finite-at-edges", "error")
def _non_finite_at_edges(r: CheckReport, ctx: Context) -> Found:
    """The loss is non-finite or fails at valid edge inputs (reconstructions of exactly 0 or 1,
    large log-variances): clamp probabilities or use the logits form."""
    for e in r.probe.edges:
        yield (
            f"non-finite or failing at valid edge inputs: {e}. Clamp probabilities or use logits "
            "with binary_cross_entropy_with_logits.",
            ctx.first("recon", "kl"),
        )


_ROLE_WORDS = (("recon", "reconstruction"), ("mu", "posterior mean"), ("scale", "posterior scale"))


@rule("no-gradient", "error")
def _no_gradient(r: CheckReport, ctx: Context) -> Found:
    """The returned loss has no gradient (converted with .item() or built from .detach()), or none
    reaches the reconstruction, the posterior mean or its scale: training would not move them."""
    g = r.probe.gradients
    line = ctx.first("gradient_cut", "return")
    if not g.get("graph", True):
        yield (
            "the returned loss has no gradient at all (converted with .item(), float() or built "
            "from .detach()/.data): training would not move.",
            line,
        )
        return
    for role, word in _ROLE_WORDS:
        if not g.get(role, True):
            yield f"no gradient reaches the {word} argument ({r.roles.get(role)}).", line


@rule("gradient-cut-in-source", "info")
def _gradient_cut_in_source(r: CheckReport, ctx: Context) -> Found:
    """The source calls .item()/.detach()/.data although the gradients flow: make sure that value is
    only logged."""
    g = r.probe.gradients
    if g.get("graph", True) and all(g.get(role, True) for role, _ in _ROLE_WORDS):
        for line in ctx.lines.get("gradient_cut", []):
            yield (
                "the source calls .item()/.detach()/.data here; the gradients still flow, but make "
                "sure this value is only logged.",
                line,
            )


@rule("per-sample-output", "info")
def _per_sample_output(r: CheckReport, ctx: Context) -> Found:
    """The loss returns one value per sample; the beta is given for their mean, which is what a
    later .mean() trains."""
    if r.output == "per_sample":
        yield (
            "the function returns one value per sample; treated as averaged over the batch by the "
            "framework (as Keras does). If you sum it, multiply the effective beta's batch factor "
            "accordingly.",
            ctx.first("return"),
        )


@rule("returns-components", "info")
def _returns_components(r: CheckReport, ctx: Context) -> Found:
    """The loss returns its terms apart (reconstruction, KL); the beta is given for their sum, as
    the training code usually adds them."""
    p = r.probe
    if p.components is None:
        return
    rec, kl = (p.positions[i] for i in p.components)
    text = (
        f"the function returns the loss's terms apart: value {rec} is the reconstruction term and "
        f"value {kl} the KL term (each factor below is of its own value); the effective beta is the "
        "one of their sum, if your training loop adds them."
    )
    for position, value in p.constants:
        beta = r.effective_beta
        if beta is not None and value:
            text += (
                f" Value {position} is the number {value:.6g}, the same for every input: if your loop "
                f"multiplies the KL term by it, the effective beta is {beta * value:.6g} instead."
            )
    yield text, ctx.first("return")


@rule("state-changes-per-call", "warning")
def _state_changes(r: CheckReport, ctx: Context) -> Found:
    """Each call of the loss changes its object's state (a schedule, a growing capacity): the
    objective changes during training."""
    changed = r.probe.state_changes
    if changed:
        names = ", ".join(f"self.{n}" for n in changed)
        yield (
            f"each call changes {names}: if the loss depends on it (a schedule, a capacity that "
            "grows), the objective changes during training. It was measured with the state as it "
            "is at the first call (restored before every probe call).",
            ctx.first("return"),
        )


@rule("monte-carlo-kl", "info")
def _monte_carlo_kl(r: CheckReport, ctx: Context) -> Found:
    """The KL term is a Monte-Carlo estimate at sampled z: its beta is given in expectation."""
    if r.probe.monte_carlo and r.probe.kl_fit.kl_ok:
        yield (
            "the KL term is a Monte-Carlo estimate (log q(z|x) - log p(z) at sampled z): its beta is "
            "given in expectation (fitted on averages over many draws per input, to about 5%); the "
            "expectation of the estimate is the analytic KL.",
            ctx.first("kl"),
        )


@rule("formula-at-these-sizes", "info")
def _formula_at_these_sizes(r: CheckReport, ctx: Context) -> Found:
    """The factors do not scale as powers of B, D and k, or the loss fails at other sizes: the
    effective beta holds at the sizes checked only."""
    s = r.sizes
    at = f"B={s['B']}, D={s['D']}, k={s['k']}"
    if r.effective_beta is not None and r.objective is None:
        yield (
            f"the factors do not scale as a power of B, D or k at three sizes each, so no formula is "
            f"given: the effective beta {r.effective_beta:.6g} holds at these sizes ({at}) only "
            "(a size-dependent weight, or a constant such as a fixed BATCH_SIZE?).",
            ctx.first("return"),
        )
    for dim in r.fixed_dims:
        if dim == "D" or r.through_model:
            continue  # hard-coded-data-dim says it; a model decides its own sizes
        yield (
            f"the loss fails at other values of {dim} ({_DIM_WORDS[dim]}), so the formulas hold at "
            f"{dim}={s[dim]} only.",
            ctx.first("return"),
        )


@rule("learned-decoder-scale", "info")
def _learned_decoder_scale(r: CheckReport, ctx: Context) -> Found:
    """The decoder's scale is learned: the effective beta is measured at its current value and moves
    as it trains."""
    scales = {} if r.through_model is None else r.through_model.log_scales
    for name, value in scales.items():
        yield (
            f"the decoder's scale is learned ({name} = {value:.4g} now): the reconstruction factor "
            "and the beta are measured at its current value, relative to a unit-variance Gaussian; "
            "as it is trained, the effective beta moves with it.",
            ctx.first("recon"),
        )


@rule("bce-on-continuous-data", "info")
def _bce_on_continuous_data(r: CheckReport, ctx: Context) -> Found:
    """Binary cross-entropy is a normalised likelihood only for binary data; for grey levels use the
    continuous Bernoulli or binarise the data."""
    if r.likelihood == "bernoulli" and not r.decoder_distribution:  # not the probe's stand-in
        yield (
            "binary cross-entropy is a normalised likelihood only for binary data; for grey levels "
            "in [0, 1] use the continuous Bernoulli (vaeloss.continuous_bernoulli_nll) or binarise "
            "the data.",
            ctx.first("recon"),
        )


@rule("decoder-variance-scale", "warning")
def _decoder_variance_scale(r: CheckReport, ctx: Context) -> Found:
    """A squared-error loss implies a decoder variance (its effective beta): above the largest
    variance data in its range can have (0.25 for [0, 1]; the range of the user's batch when a
    run saw it) the noise explains the data away, below 4e-4 of it (1e-4 for [0, 1]) the KL
    hardly counts."""
    var = r.effective_beta
    seen = r.observed.data_range if r.observed is not None else None
    lo, hi = seen if seen is not None and seen[1] > seen[0] else (0.0, 1.0)
    most = ((hi - lo) / 2) ** 2  # the largest variance of data in [lo, hi]
    if r.likelihood != "gaussian" or var is None or 4e-4 * most <= var <= most:
        return
    span = f"[{lo:.3g}, {hi:.3g}]"
    what = (
        f"larger than the variance of any data in {span} (at most {most:.3g}): the decoder noise "
        "explains the data away; expect blurry outputs and collapsed dims"
        if var > most
        else f"below {4e-4 * most:.3g}: the KL hardly counts; expect an unregularised latent space"
    )
    where = " (your step's batch)" if seen is not None else ""
    yield (
        f"this squared-error loss implies a decoder variance sigma^2 = {var:.4g} "
        f"(sigma = {var**0.5:.3g}) for data in {span}{where}: {what}.",
        ctx.first("recon"),
    )


@rule("expect-beta-mismatch", "error")
def _expect_beta_mismatch(r: CheckReport, ctx: Context) -> Found:
    """The effective beta differs from the one --expect-beta (or the configuration's expect-beta)
    asks for."""
    expected = ctx.expect_beta
    if expected is None:
        return
    actual = r.effective_beta
    if actual is None or abs(actual - expected) > TOLERANCE * max(abs(expected), 1e-12):
        s = r.sizes
        yield (
            f"expected beta {expected:g} but the loss has "
            f"{'no single beta' if actual is None else format(actual, '.6g')} at "
            f"B={s['B']}, D={s['D']}, k={s['k']}.",
            ctx.first("return"),
        )


@rule("kl-factor-two", "info")
def _kl_factor_two(r: CheckReport, ctx: Context) -> Found:
    """The KL term is exactly twice the Gaussian KL: a missing 0.5?"""
    beta = r.beta
    if beta is not None and beta.coef == 2 and not beta.depends_on() and r.kl_weight_parameter is None:
        yield "the KL term is exactly twice the Gaussian KL: a missing 0.5?", ctx.first("kl")


@rule("hard-coded-data-dim", "info")
def _hard_coded_data_dim(r: CheckReport, ctx: Context) -> Found:
    """The loss fails at other data dimensions (a hard-coded 784?): how its beta scales with D is
    unknown."""
    if r.data_dim_fixed and not r.through_model:
        D = r.sizes["D"]
        read = r.beta is not None and "D" in r.beta.depends_on()
        how = (
            f"their D is read from the factors' values there (a factor 1/{D} as 1/D), not measured "
            "at another D"
            if read
            else "how they would scale with another D is not measured"
        )
        yield (
            f"the function fails at other data dimensions (a hard-coded {D}?), so the formulas are "
            f"checked at D={D} only: {how}.",
            ctx.first("hard_coded_784", "recon"),
        )


CODES: dict[str, Severity] = {code: severity for code, (severity, _) in _RULES.items()}
HELP: dict[str, str] = {code: " ".join((fn.__doc__ or "").split()) for code, (_, fn) in _RULES.items()}
"""Each code's help text, one line (from its rule's docstring)."""


def build_findings(r: CheckReport, ctx: Context) -> list[Finding]:
    """Every finding of the report, in the order the rules are registered."""
    return [
        Finding(code, severity, message, line, ctx.where(line))
        for code, (severity, check) in _RULES.items()
        for message, line in check(r, ctx)
    ]


_SUM_OVER_DATA_DIMS = {
    "torch": "reduction='none' then .sum(dim=-1)",
    "tensorflow": "tf.reduce_sum over every axis but the batch's",
    "jax": "jnp.sum over every axis but the batch's",
    "numpy": "np.sum over every axis but the batch's",
}
_KERAS_SUM = "keras.ops.sum of the elementwise keras.ops.binary_crossentropy over every axis but the batch's"


def _sum_over_data_dims(framework: str) -> str:
    """How to sum the reconstruction over data dims, in the framework's own words."""
    return _KERAS_SUM if framework.startswith("keras") else _SUM_OVER_DATA_DIMS.get(framework, "")


def build_fix(r: CheckReport) -> str:
    """One concrete fix, in the user's own terms (and its framework's)."""
    obj, value = r.objective, r.effective_beta
    if value is not None and obj is None:
        return (
            f"This loss has an effective beta of {value:.6g} at these sizes. For the ELBO (beta = 1) "
            f"multiply the KL term by {1 / value:.6g} here; to make it hold at every size, sum the "
            "reconstruction over data dims and the KL over latent dims and average over the batch."
        )
    if obj is None or value is None:
        return (
            "Write the loss as (reconstruction NLL summed over data dims + beta * KL summed "
            "over latent dims).mean() over the batch, so that it has one well-defined beta."
        )
    sizes = f"at B={r.sizes['B']}, D={r.sizes['D']}, k={r.sizes['k']}"
    if obj.beta_monomial.depends_on():
        return (
            "Reduce both terms the same way: sum the reconstruction over data dims "
            f"({_sum_over_data_dims(r.framework)}) and the KL over latent dims, then take "
            "the mean over the batch; that is the ELBO (beta = 1) at every size. To keep your "
            f"code instead, multiply the KL term by {(1 / value):.4g} ({sizes}), "
            f"i.e. {obj.kl_weight_formula_for_elbo()}."
        )
    if abs(value - 1) < 1e-9:
        return "None needed: this is the negative ELBO (beta = 1)."
    if r.kl_weight_parameter is not None:
        given = r.defaults.get(r.kl_weight_parameter, 1.0)
        current = float(given) if isinstance(given, (int, float)) else 1.0
        return (
            f"This is a beta-VAE with beta = {value:.6g}. For the ELBO (beta = 1) set "
            f"{r.kl_weight_parameter}={current / value:.6g}."
        )
    return (
        f"This is a beta-VAE with beta = {value:.6g}. For the ELBO (beta = 1) multiply the KL "
        f"term by {1 / value:.6g}."
    )
