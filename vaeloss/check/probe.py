r"""Numerical probing of a loss (runs inside the worker process).

Each value the loss returns is modelled as :math:`L = a\,N(r, x) + b\,K(\mu, s) + c` where
:math:`N` is the batch-and-data sum of a reference NLL and :math:`K` the batch-and-latent sum of
the Gaussian KL in one parameterisation. Varying the reconstruction side alone gives
:math:`\Delta L = a\,\Delta N`; varying the latent side alone gives :math:`\Delta L = b\,\Delta K`.
Each hypothesis (likelihood, parameterisation) is fitted by least squares through the origin
and kept only if its relative residual is tiny; fresh joint inputs then verify the whole
model. Repeating the fit at three sizes of B, D and k gives the exponents.

A loss that returns several values (``return recon, kl`` or ``(loss, recon, kl)``) is fitted
value by value: the first value holding both terms is the loss; failing that, a value holding
only the reconstruction term and one holding only the KL term are the loss's components.
A loss that samples (a Monte-Carlo KL on ``q.rsample()``) is called with the same random seed
for every input, and, when the KL does not fit at one seed, averaged over seeds: the
Monte-Carlo KL's expectation is the analytic KL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Normal

from vaeloss.check.forms import CallForm, OutputError, output_tensor, read_output
from vaeloss.check.objects import LossObject, StateGuard
from vaeloss.check.result import MC_TOLERANCE, MC_ZSCORE, ElementFit, ProbeResult, SizeFit
from vaeloss.objective.kl import PARAMETERISATIONS, LatentParameterisation, kl_normal
from vaeloss.objective.likelihoods import DecoderOutput, Likelihood, element_nll

__all__ = ["CallWatch", "Caller", "Plan", "ProbeFailure", "function_callers", "probe", "search"]

DTYPE = torch.float64
SEED = 1234
MC_PRECISE = 0.005
"""A Monte-Carlo fit this good needs no more draws."""

Hypothesis = tuple[Likelihood, DecoderOutput]
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


class ProbeFailure(Exception):
    """The loss could not be probed; the message says why."""


class CallWatch(Protocol):
    """Told when each call of the user's code starts and how long it took (the worker reports
    both, so that ``--timeout`` counts the user's code and not the probe's own work)."""

    def started(self) -> None: ...

    def finished(self, seconds: float) -> None: ...


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


def _label(h: Hypothesis) -> str:
    return f"{h[0]}/{h[1]}"


def _reference(h: Hypothesis, r: Tensor, x: Tensor) -> float:
    """The batch-and-data sum of the reference NLL of hypothesis ``h`` (unit scale)."""
    return float(element_nll(r, x, likelihood=h[0], decoder_output=h[1], validate=False).sum())


class Caller:
    """Calls the loss with the probe's tensors placed by a :class:`CallForm`, and reads what it
    returns as a vector of numbers."""

    def __init__(
        self,
        obj: LossObject,
        form: CallForm,
        extra: dict[str, Any],
        shape: tuple[int, ...],
        binary: bool,
        guard: StateGuard,
        timings: list[float],
        watch: CallWatch | None = None,
    ) -> None:
        self.obj, self.form, self.extra, self.shape, self.binary, self.guard = (
            obj,
            form,
            extra,
            shape,
            binary,
            guard,
        )
        self.timings, self.watch = timings, watch
        self.output: Literal["scalar", "per_sample"] = "scalar"
        self.read_as = ""
        self.positions: list[int] = []
        self.seed = SEED

    def describe(self) -> dict[str, str]:
        """Role -> where the probe puts it, for the report."""
        return self.form.describe()

    def with_shape(self, shape: tuple[int, ...]) -> Caller:
        """The same caller for samples of another shape."""
        return Caller(
            self.obj, self.form, self.extra, shape, self.binary, self.guard, self.timings, self.watch
        )

    def arguments(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor) -> tuple[list[Any], dict[str, Any]]:
        B = r.shape[0]
        tensors: dict[str, Tensor] = {
            "recon": r.reshape(B, *self.shape),
            "data": x.reshape(B, *self.shape),
            "mu": mu,
            "scale": s,
            "z": mu + 0.1 * s,
        }
        kwargs: dict[str, Any] = dict(self.extra)
        positional: dict[int, Any] = {}
        for slot in self.form.slots:
            if slot.kind == "tensor":
                value: Any = tensors[slot.roles[0]]
            elif slot.kind == "pack":
                value = tuple(tensors[role] for role in slot.roles)
            elif slot.kind == "posterior":
                value = Normal(mu, s, validate_args=False)
            elif slot.kind == "prior":
                value = Normal(torch.zeros_like(mu), torch.ones_like(s), validate_args=False)
            else:
                value = Bernoulli(probs=tensors["recon"], validate_args=False)
            if slot.param.startswith("*"):
                for i, role in enumerate(slot.roles):
                    positional[int(slot.param[1:]) + i] = tensors[role]
            else:
                kwargs[slot.param] = value
        return [positional[i] for i in sorted(positional)], kwargs

    def raw(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, **override: Any) -> Any:
        args, kwargs = self.arguments(r, x, mu, s)
        kwargs.update(override)
        self.guard.restore()
        torch.manual_seed(self.seed)
        if self.watch is not None:
            self.watch.started()
        start = time.perf_counter()
        try:
            return self.obj.call(*args, **kwargs)
        finally:
            took = time.perf_counter() - start
            self.timings.append(took)
            if self.watch is not None:
                self.watch.finished(took)

    def __call__(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, **override: Any) -> list[float]:
        with torch.no_grad():
            out = self.raw(r, x, mu, s, **override)
        values, self.read_as, self.positions = read_output(out, r.shape[0])
        self.output = _output_kind(out, r.shape[0])
        return values


def _output_kind(out: Any, B: int) -> Literal["scalar", "per_sample"]:
    from vaeloss.check.forms import loss_value

    value, _ = loss_value(out, B)
    first = value[0] if isinstance(value, (tuple, list)) and value else value
    if isinstance(first, Tensor) and first.dim() == 1 and first.shape[0] == B and B > 1:
        return "per_sample"
    return "scalar"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _recon_inputs(B: int, D: int, g: torch.Generator, binary: bool = False) -> tuple[Tensor, Tensor]:
    r = 0.05 + 0.9 * torch.rand(B, D, generator=g, dtype=DTYPE)
    x = torch.rand(B, D, generator=g, dtype=DTYPE)
    return r, ((x > 0.5).to(DTYPE) if binary else x)


def _latent_inputs(B: int, k: int, g: torch.Generator, kind: int) -> tuple[Tensor, Tensor]:
    if kind == 0:
        mu = torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.3 + 1.7 * torch.rand(B, k, generator=g, dtype=DTYPE)
    elif kind == 1:  # near the prior for log-parameterisations
        mu = 0.02 * torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.01 + 0.05 * torch.rand(B, k, generator=g, dtype=DTYPE)
    elif kind == 2:  # near the prior for std / var
        mu = 0.02 * torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.95 + 0.1 * torch.rand(B, k, generator=g, dtype=DTYPE)
    else:  # far from the prior in mean: where non-Gaussian KLs (flows) part from the Gaussian one
        mu = 2.5 * torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.3 + 0.4 * torch.rand(B, k, generator=g, dtype=DTYPE)
    return mu, s


def _standard_errors(draws: list[list[float]]) -> list[float]:
    """Per value, the standard error of the mean of ``draws`` (0 for a single draw)."""
    n = len(draws)
    if n < 2:
        return [0.0] * len(draws[0])
    out = []
    for col in zip(*draws):
        mean = sum(col) / n
        out.append(math.sqrt(sum((v - mean) ** 2 for v in col) / (n - 1) / n))
    return out


def _fit(dl: list[float], dn: list[float], scale: float) -> tuple[float, float]:
    """Least-squares slope through the origin and its relative residual (0 when the term is
    absent: ``dl`` is nothing next to ``scale``)."""
    size = math.sqrt(sum(a * a for a in dl))
    if size <= 1e-12 * max(scale, 1.0):
        return 0.0, 0.0
    den = sum(b * b for b in dn)
    if den == 0:
        return 0.0, math.inf
    slope = sum(a * b for a, b in zip(dl, dn)) / den
    res = math.sqrt(sum((a - slope * b) ** 2 for a, b in zip(dl, dn)))
    return slope, res / size


def _draws(
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


def _values(
    call: Caller, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, samples: int = 1, **kw: Any
) -> list[float]:
    """The loss's values at these inputs: one call, or the mean over ``samples`` seeds."""
    return _mean(_draws(call, r, x, mu, s, samples, **kw))


def _mean(draws: list[list[float]]) -> list[float]:
    out = [sum(col) / len(draws) for col in zip(*draws)]
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise ProbeFailure(
            f"the function returned {bad[0]} at ordinary inputs "
            "(probabilities in [0.05, 0.95], |mu| ~ 1, scales in [0.01, 2])"
        )
    return out


def fit_at(
    call: Caller,
    B: int,
    D: int,
    k: int,
    plan: Plan,
    *,
    seed: int = 0,
    fixed: list[tuple[Hypothesis | None, LatentParameterisation | None]] | None = None,
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
    g = _gen(seed)
    n_r = plan.recon_probes if fixed is None else plan.size_recon
    n_k = plan.latent_probes if fixed is None else plan.size_latent
    n_v = plan.verify if fixed is None else plan.size_verify
    r0, x0 = _recon_inputs(B, D, g, call.binary)
    mu0, s0 = _latent_inputs(B, k, g, 0)
    base = _draws(call, r0, x0, mu0, s0, samples, **kw)
    L0 = _mean(base)
    m = len(L0)
    recon_probes = [_recon_inputs(B, D, g, call.binary) for _ in range(n_r)]
    dl_r = [[v - l for v, l in zip(_values(call, r, x, mu0, s0, samples, **kw), L0)] for r, x in recon_probes]
    kinds = 4 if monte_carlo else 3
    latent_probes = [_latent_inputs(B, k, g, i % kinds) for i in range(n_k)]
    dl_k, se_k = [], []
    for mu, s in latent_probes:
        diffs = [
            [v - b for v, b in zip(d, d0)] for d, d0 in zip(_draws(call, r0, x0, mu, s, samples, **kw), base)
        ]
        dl_k.append(_mean(diffs))
        se_k.append(_standard_errors(diffs))
    refs_r = {}
    for h in HYPOTHESES:
        try:
            n0 = _reference(h, r0, x0)
            refs_r[h] = (n0, [_reference(h, r, x) - n0 for r, x in recon_probes])
        except (RuntimeError, ValueError):  # a hypothesis that does not apply to these inputs
            continue
    refs_k = {}
    for p in PARAMETERISATIONS:
        k0 = float(kl_normal(mu0, s0, parameterisation=p).sum())
        refs_k[p] = (k0, [float(kl_normal(mu, s, parameterisation=p).sum()) - k0 for mu, s in latent_probes])
    fits = []
    for j in range(m):
        col_r = [row[j] for row in dl_r]
        col_k = [row[j] for row in dl_k]
        scale = max([abs(L0[j])] + [abs(v) for v in col_r + col_k])
        given_r, given_k = fixed[j] if fixed is not None else (None, None)
        hyp_r = [given_r] if given_r is not None else list(refs_r)
        hyp_k = [given_k] if given_k is not None else list(refs_k)
        recon_fits = {h: _fit(col_r, refs_r[h][1], scale) for h in hyp_r if h in refs_r}
        kl_fits = {p: _fit(col_k, refs_k[p][1], scale) for p in hyp_k}
        best_r = min(recon_fits, key=lambda h: recon_fits[h][1])
        best_k = min(kl_fits, key=lambda p: kl_fits[p][1])
        a, res_a = recon_fits[best_r]
        b, res_b = kl_fits[best_k]
        c = L0[j] - a * refs_r[best_r][0] - b * refs_k[best_k][0]
        # Monte-Carlo: the misfit of each latent probe in standard errors of its average
        zscore = 0.0
        if samples > 1:
            floor = max(1e-12 * scale, 1e-300)
            zscore = max(
                abs(col_k[i] - b * refs_k[best_k][1][i]) / max(se_k[i][j], floor) for i in range(n_k)
            )
        fits.append(
            ElementFit(
                best_r[0] if a else None,
                best_r[1] if a else None,
                a,
                res_a,
                best_k if b else None,
                b,
                res_b,
                c,
                abs(c) / max(scale, 1e-12),
                recon_alternatives={_label(h): v[1] for h, v in recon_fits.items()},
                monte_carlo=samples > 1,
                kl_zscore=zscore,
            )
        )
    # verification on fresh joint inputs
    worst = [0.0] * m
    for i in range(n_v):
        r, x = _recon_inputs(B, D, g, call.binary)
        mu, s = _latent_inputs(B, k, g, i)
        actual = _values(call, r, x, mu, s, samples, **kw)
        for j, f in enumerate(fits):
            expected = f.c
            if f.a and f.likelihood is not None and f.decoder_output is not None:
                expected += f.a * _reference((f.likelihood, f.decoder_output), r, x)
            if f.b and f.parameterisation is not None:
                expected += f.b * float(kl_normal(mu, s, parameterisation=f.parameterisation).sum())
            worst[j] = max(worst[j], abs(actual[j] - expected) / max(abs(actual[j]), abs(L0[j]), 1e-12))
    for f, w in zip(fits, worst):
        f.verify_residual = w
    return fits


def _layouts(D: int, input_shape: tuple[int, ...] | None) -> list[tuple[int, ...]]:
    if input_shape is not None:
        return [input_shape]
    out: list[tuple[int, ...]] = [(D,)]
    side = int(round(math.sqrt(D)))
    if side * side == D:
        out.append((1, side, side))
    return out


def _resize(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """The shape with its last dim scaled (the data dim D scales with it)."""
    return (*shape[:-1], max(1, round(shape[-1] * factor)))


@dataclass
class _Reading:
    """The values a call form gives, read as the loss and its components."""

    fits: list[ElementFit]
    total: int | None
    components: tuple[int, int] | None
    constants: list[int]

    @property
    def score(self) -> tuple[int, float]:
        """0: a value that is the whole loss fits exactly; 1: exact components; 2: misfit;
        3: no value depends on the inputs at all."""
        if all(not f.a and not f.b for f in self.fits):
            return 3, 0.0
        if self.total is not None and self.fits[self.total].exact:
            return 0, 0.0
        if self.components is not None:
            r, k = self.components
            if self.fits[r].exact and self.fits[k].exact:
                return 1, 0.0
        best = min(f.recon_residual + f.kl_residual for f in self.fits)
        return 2, best


def _read(fits: list[ElementFit]) -> _Reading:
    total = next((i for i, f in enumerate(fits) if f.a and f.b and f.exact), None)
    if total is None:
        total = next((i for i, f in enumerate(fits) if f.a and f.b), None)
    recon_only = [i for i, f in enumerate(fits) if f.a and not f.b]
    kl_only = [i for i, f in enumerate(fits) if f.b and not f.a]
    constants = [i for i, f in enumerate(fits) if not f.a and not f.b]
    components = None
    if (total is None or not fits[total].exact) and recon_only and kl_only:
        components = (recon_only[0], kl_only[0])
        total = None
    elif total is None and len(fits) == 1:
        total = 0  # one value with one term: the report says which term is missing
    return _Reading(fits, total, components, constants)


def _stochastic(call: Caller, B: int, D: int, k: int) -> bool:
    """Whether two calls with the same inputs but different random seeds differ."""
    g = _gen(3)
    r, x = _recon_inputs(B, D, g, call.binary)
    mu, s = _latent_inputs(B, k, g, 0)
    first = _values(call, r, x, mu, s)
    call.seed = SEED + 1
    try:
        second = call(r, x, mu, s)
    finally:
        call.seed = SEED
    return any(abs(a - b) > 1e-9 * max(abs(a), abs(b), 1e-12) for a, b in zip(first, second))


def _gradients(call: Caller, B: int, D: int, k: int, index: int) -> dict[str, bool]:
    g = _gen(7)
    r, x = _recon_inputs(B, D, g, call.binary)
    mu, s = _latent_inputs(B, k, g, 0)
    for t in (r, mu, s):
        t.requires_grad_(True)
    out = output_tensor(call.raw(r, x, mu, s), B, index)
    if not out.requires_grad:
        return {"recon": False, "mu": False, "scale": False, "graph": False}
    grads = torch.autograd.grad(out, [r, mu, s], allow_unused=True)
    flags = {
        n: g_ is not None and bool(torch.isfinite(g_).all()) and float(g_.abs().max()) > 0
        for n, g_ in zip(("recon", "mu", "scale"), grads)
    }
    return {**flags, "graph": True}


def _edges(call: Caller, B: int, D: int, k: int, fit: ElementFit, index: int) -> list[str]:
    g = _gen(11)
    bad = []
    _, x = _recon_inputs(B, D, g)
    mu, s = _latent_inputs(B, k, g, 0)
    cases: list[tuple[str, Tensor, Tensor, Tensor, Tensor]] = []
    if fit.decoder_output == "probabilities":
        xb = (x > 0.5).to(DTYPE)
        cases += [
            ("probabilities of exactly 0 and 1 agreeing with binary data", xb.clone(), xb, mu, s),
            ("probabilities of exactly 0 and 1 opposite to binary data", 1 - xb, xb, mu, s),
        ]
    r, x = _recon_inputs(B, D, g, call.binary)
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
    for name, r_, x_, mu_, s_ in cases:
        try:
            with torch.no_grad():
                v = float(output_tensor(call.raw(r_, x_, mu_, s_), B, index).detach())
        except Exception as exc:  # noqa: BLE001 - any failure is a finding
            bad.append(f"{name}: raised {type(exc).__name__}: {str(exc)[:120]}")
            continue
        if not math.isfinite(v):
            bad.append(f"{name}: returned {v}")
    return bad


def _attempt_error(shape: tuple[int, ...], binary: bool, form: CallForm, exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    roles = ", ".join(f"{k}={v}" for k, v in form.describe().items())
    data = "binary" if binary else "continuous"
    return f"{data} data of shape [B, {', '.join(map(str, shape))}], {roles}: {type(exc).__name__}: {text}"


def _sizes(
    call: Caller, reading: _Reading, chosen: list[int], plan: Plan, monte_carlo: bool, base: dict[str, int]
) -> dict[str, SizeFit]:
    """The chosen terms' factors at three values of each of B, D, k (the others at base)."""
    fixed = [
        ((f.likelihood, f.decoder_output) if f.likelihood and f.decoder_output else None, f.parameterisation)
        for f in reading.fits
    ]
    out: dict[str, SizeFit] = {}
    dims: tuple[Literal["B", "D", "k"], ...] = ("B", "D", "k")
    for dim in dims:
        values: list[int] = []
        a: list[float] = []
        b: list[float] = []
        error = None
        for factor in (1.0, 2.0, 0.5 if base[dim] >= 2 else 3.0):
            sz, shape = dict(base), call.shape
            if dim == "D":
                shape = _resize(call.shape, factor)
                sz["D"] = math.prod(shape)
            else:
                sz[dim] = max(1, round(base[dim] * factor))
            values.append(sz[dim])
            fits = reading.fits
            if factor != 1.0:
                try:
                    other = call.with_shape(shape)
                    fits = fit_at(
                        other, sz["B"], sz["D"], sz["k"], plan, seed=1, fixed=fixed, monte_carlo=monte_carlo
                    )
                except Exception as exc:  # noqa: BLE001 - the loss fails at this size: a fixed size
                    error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                    break
            a.append(fits[chosen[0]].a)
            b.append(fits[chosen[-1]].b)
        out[dim] = SizeFit(dim, values, a, b, error)
    return out


def function_callers(
    obj: LossObject,
    forms: list[CallForm],
    extra: dict[str, Any],
    *,
    D: int,
    input_shape: tuple[int, ...] | None,
    guard: StateGuard,
    timings: list[float],
    watch: CallWatch | None = None,
) -> Iterator[Caller]:
    """Callers for a loss function: every call form, layout of the data and kind of data
    (continuous first; binary for losses that refuse non-binary targets)."""
    for binary in (False, True):
        for shape in _layouts(D, input_shape):
            for form in forms:
                yield Caller(obj, form, extra, shape, binary, guard, timings, watch)


def search(
    callers: Iterable[Caller], *, B: int, k: int, plan: Plan, monte_carlo: bool = False
) -> tuple[Caller, _Reading]:
    """The caller under which the loss fits best (the first exact one), with its fit at the
    base sizes (averaged over seeds with ``monte_carlo``).

    Raises:
        ProbeFailure: no caller could call the loss, or it returned something that is not a loss.
    """
    errors: list[str] = []
    best: tuple[tuple[int, float], Caller, _Reading] | None = None
    for call in callers:
        D = math.prod(call.shape)
        try:
            reading = _read(fit_at(call, B, D, k, plan, monte_carlo=monte_carlo))
        except (ProbeFailure, OutputError):
            raise
        except Exception as exc:  # noqa: BLE001 - try the next form or layout
            errors.append(_attempt_error(call.shape, call.binary, call.form, exc))
            continue
        if best is None or reading.score < best[0]:
            best = (reading.score, call, reading)
        if reading.score[0] <= 1:
            break
    if best is None:
        if not errors:
            raise ProbeFailure("no way to pass (reconstruction, data, mu, logvar) to its parameters")
        raise ProbeFailure("the function raised on every input layout tried:\n  " + "\n  ".join(errors[-4:]))
    if all(not f.a and not f.b for f in best[2].fits):
        values = ", ".join(f"{f.c:.6g}" for f in best[2].fits)
        raise ProbeFailure(
            f"the function's value does not change with the reconstruction or the latents (it returned "
            f"{values} for every input): it is not a VAE loss of these arguments"
        )
    return best[1], best[2]


def probe(
    obj: LossObject,
    make_callers: Callable[[StateGuard, list[float]], Iterable[Caller]],
    weights: dict[str, float],
    *,
    B: int,
    D: int,
    k: int,
    plan: Plan,
    budget: float | None = None,
) -> ProbeResult:
    """Find the caller (form, layout, data kind) under which the loss fits, then its factors
    at three sizes of B, D and k, its KL-weight parameter, its gradients and its behaviour at
    edge inputs.

    ``budget`` is the time left for the user's calls (seconds): when the rest of the full plan
    would not fit in most of it at the loss's measured speed, the size fits use
    :meth:`Plan.reduced`.

    Raises:
        ProbeFailure: no form could call the loss, or it returned something that is not a loss.
    """
    guard = StateGuard(obj.instance)
    timings: list[float] = []
    call, reading = search(make_callers(guard, timings), B=B, k=k, plan=plan)
    D = math.prod(call.shape)
    monte_carlo = reading.score[0] >= 2 and _stochastic(call, B, D, k)
    if monte_carlo:  # a Monte-Carlo KL: search again on averages over seeds (expectations)
        call, reading = search(make_callers(guard, timings), B=B, k=k, plan=plan, monte_carlo=True)
        # more draws until the fit is clearly good (0.5%) or clearly off (a few standard errors):
        # a KL that is no Gaussian KL (a flow's) can look like one at first
        draws = plan.mc_draws
        while draws < 4 * plan.mc_draws and any(
            f.b and MC_PRECISE <= f.kl_residual < MC_TOLERANCE and f.kl_zscore < MC_ZSCORE
            for f in reading.fits
        ):
            draws *= 2
            reading = _read(fit_at(call, B, D, k, replace(plan, mc_draws=draws), monte_carlo=True))
        # the size fits need only the factors' ratios (integer exponents): the fewest calls
        plan = replace(Plan.reduced(), mc_draws=plan.mc_draws // 2)
    if budget is not None and timings:
        per_call = sorted(timings)[len(timings) // 2] * (plan.mc_samples(B, k) if monte_carlo else 1)
        left = budget - sum(timings)  # the user's calls only: the budget is theirs
        if per_call * plan.remaining_calls(len(weights)) > 0.7 * left:
            plan = Plan.reduced()
    chosen = [reading.total] if reading.total is not None else list(reading.components or (0,))
    sizes = _sizes(call, reading, chosen, plan, monte_carlo, {"B": B, "D": D, "k": k})
    fixed = [
        ((f.likelihood, f.decoder_output) if f.likelihood and f.decoder_output else None, f.parameterisation)
        for f in reading.fits
    ]
    weight_effects: dict[str, dict[str, float]] = {}
    for pname, value in weights.items():
        doubled = {pname: 2 * value if value else 1.0}
        try:
            f2 = fit_at(call, B, D, k, plan, seed=2, fixed=fixed, monte_carlo=monte_carlo, **doubled)
        except Exception:  # noqa: BLE001 - not a weight the loss can take doubled
            continue
        weight_effects[pname] = {"a": f2[chosen[0]].a, "b": f2[chosen[-1]].b, "value": value}
    gradients = _gradients_of(call, B, D, k, chosen)
    edges = (
        _edges(call, B, D, k, reading.fits[chosen[0]], call.positions[chosen[0]]) if len(chosen) == 1 else []
    )
    seconds = sorted(timings)[len(timings) // 2] if timings else 0.0
    return ProbeResult(
        roles=call.describe(),
        input_shape=list(call.shape),
        binary_data=call.binary,
        output=call.output,
        read_as=call.read_as,
        positions=call.positions,
        fits=reading.fits,
        total=reading.total,
        components=reading.components,
        constants=[(call.positions[i], reading.fits[i].c) for i in reading.constants],
        sizes=sizes,
        weight_effects=weight_effects,
        gradients=gradients,
        edges=edges,
        state_changes=guard.changed(),
        monte_carlo=monte_carlo,
        seconds_per_call=seconds,
        calls=len(timings),
    )


def _gradients_of(call: Caller, B: int, D: int, k: int, chosen: list[int]) -> dict[str, bool]:
    """Gradients of the loss (the value that is the loss, or the sum of the components)."""
    flags = [_gradients(call, B, D, k, call.positions[i]) for i in chosen]
    return {key: any(f[key] for f in flags) for key in flags[0]}
