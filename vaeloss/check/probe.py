r"""Numerical probing of a loss function (runs inside the worker process).

The loss is modelled as :math:`L = a\,N(r, x) + b\,K(\mu, s) + c` where :math:`N` is the
batch-and-data sum of a reference NLL and :math:`K` the batch-and-latent sum of the
Gaussian KL in one parameterisation. Varying the reconstruction side alone gives
:math:`\Delta L = a\,\Delta N`; varying the latent side alone gives :math:`\Delta L = b\,\Delta K`.
Each hypothesis (likelihood, parameterisation) is fitted by least squares through the
origin and kept only if its relative residual is tiny; fresh joint inputs then verify
the whole model. Repeating the fit with B, D or k doubled gives the exponents.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from vaeloss.check.result import TOLERANCE
from vaeloss.objective.kl import PARAMETERISATIONS, LatentParameterisation, kl_normal
from vaeloss.objective.likelihoods import DecoderOutput, Likelihood, element_nll

__all__ = ["ProbeFailure", "probe_function"]

DTYPE = torch.float64

Hypothesis = tuple[Likelihood, DecoderOutput]
HYPOTHESES: tuple[Hypothesis, ...] = (
    ("bernoulli", "probabilities"),
    ("bernoulli", "logits"),
    ("gaussian", "mean"),
    ("continuous_bernoulli", "probabilities"),
    ("continuous_bernoulli", "logits"),
)


def _reference(h: Hypothesis, r: Tensor, x: Tensor) -> float:
    """The batch-and-data sum of the reference NLL of hypothesis ``h`` (unit-variance Gaussian)."""
    return float(element_nll(r, x, likelihood=h[0], decoder_output=h[1], validate=False).sum())


def _label(h: Hypothesis) -> str:
    return f"{h[0]}/{h[1]}"


class ProbeFailure(Exception):
    """The function could not be probed; the message says why."""


class Caller:
    """Calls the user's function with tensors placed by role, and reads its output."""

    def __init__(
        self,
        fn: Callable[..., Any],
        roles: dict[str, str],
        extra: dict[str, Any],
        shape: tuple[int, ...],
    ) -> None:
        self.fn, self.roles, self.extra, self.shape = fn, roles, extra, shape
        self.output = "scalar"
        self.binary = False  # binary data, for losses that validate Bernoulli support

    def __call__(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, **override: Any) -> Tensor:
        B = r.shape[0]
        kwargs = dict(self.extra)
        kwargs.update(override)
        kwargs[self.roles["recon"]] = r.reshape(B, *self.shape)
        kwargs[self.roles["data"]] = x.reshape(B, *self.shape)
        kwargs[self.roles["mu"]] = mu
        kwargs[self.roles["scale"]] = s
        if "z" in self.roles:
            kwargs[self.roles["z"]] = mu + 0.1 * s
        positional = [kwargs.pop(f"*{i}") for i in range(4) if f"*{i}" in kwargs]
        out = self.fn(*positional, **kwargs)
        return self.read(out, B)

    def read(self, out: Any, B: int) -> Tensor:
        if isinstance(out, (tuple, list)) and out:
            out = out[0]
        elif isinstance(out, dict):
            if "loss" not in out:
                raise ProbeFailure(
                    f"the function returned a dict without a 'loss' key (keys: {sorted(out)}); "
                    "return the total loss under 'loss'"
                )
            out = out["loss"]
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            out = torch.tensor(float(out), dtype=DTYPE)
        if not isinstance(out, Tensor):
            raise ProbeFailure(
                f"the function returned {type(out).__name__}, not a tensor; return the loss "
                "tensor (a scalar, or one value per sample)"
            )
        if out.dim() == 0:
            self.output = "scalar"
            return out
        if out.dim() == 1 and out.shape[0] == B:
            self.output = "per_sample"
            return out.mean()
        raise ProbeFailure(
            f"the function returned a tensor of shape {tuple(out.shape)}; expected a scalar or "
            f"one value per sample (shape [{B}])"
        )


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
    else:  # near the prior for std / var
        mu = 0.02 * torch.randn(B, k, generator=g, dtype=DTYPE)
        s = 0.95 + 0.1 * torch.rand(B, k, generator=g, dtype=DTYPE)
    return mu, s


def _fit(dl: list[float], dn: list[float]) -> tuple[float, float]:
    """Least-squares slope through the origin and its relative residual."""
    num = sum(a * b for a, b in zip(dl, dn))
    den = sum(b * b for b in dn)
    if den == 0:
        return 0.0, math.inf
    slope = num / den
    res = math.sqrt(sum((a - slope * b) ** 2 for a, b in zip(dl, dn)))
    scale = max(math.sqrt(sum(a * a for a in dl)), 1e-300)
    return slope, res / scale


def _value(call: Caller, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, **kw: Any) -> float:
    with torch.no_grad():
        v = float(call(r, x, mu, s, **kw))
    if not math.isfinite(v):
        raise ProbeFailure(
            f"the function returned {v} at ordinary inputs "
            "(probabilities in [0.05, 0.95], |mu| ~ 1, scales in [0.01, 2])"
        )
    return v


def fit_at(
    call: Caller,
    B: int,
    D: int,
    k: int,
    seed: int = 0,
    fixed: tuple[Hypothesis, LatentParameterisation] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Fit the factors a and b (and c) at one set of sizes."""
    g = _gen(seed)
    r0, x0 = _recon_inputs(B, D, g, call.binary)
    mu0, s0 = _latent_inputs(B, k, g, 0)
    L0 = _value(call, r0, x0, mu0, s0, **kw)
    recon_probes = [_recon_inputs(B, D, g, call.binary) for _ in range(4)]
    dl_r = [_value(call, r, x, mu0, s0, **kw) - L0 for r, x in recon_probes]
    recon_fits: dict[Hypothesis, tuple[float, float, float]] = {}
    hyps = [fixed[0]] if fixed else list(HYPOTHESES)
    for h in hyps:
        n0 = _reference(h, r0, x0)
        dn = [_reference(h, r, x) - n0 for r, x in recon_probes]
        a, res = _fit(dl_r, dn)
        recon_fits[h] = (a, res, n0)
    latent_probes = [_latent_inputs(B, k, g, i % 3) for i in range(6)]
    dl_k = [_value(call, r0, x0, mu, s, **kw) - L0 for mu, s in latent_probes]
    kl_fits: dict[LatentParameterisation, tuple[float, float, float]] = {}
    params = [fixed[1]] if fixed else list(PARAMETERISATIONS)
    for p in params:
        k0 = float(kl_normal(mu0, s0, parameterisation=p).sum())
        dk = [float(kl_normal(mu, s, parameterisation=p).sum()) - k0 for mu, s in latent_probes]
        b, res = _fit(dl_k, dk)
        kl_fits[p] = (b, res, k0)
    best_r = min(recon_fits, key=lambda h: recon_fits[h][1])
    best_k = min(kl_fits, key=lambda p: kl_fits[p][1])
    a, res_a, n0 = recon_fits[best_r]
    b, res_b, k0 = kl_fits[best_k]
    c = L0 - a * n0 - b * k0
    # verification on fresh joint inputs
    worst = 0.0
    for i in range(3):
        r, x = _recon_inputs(B, D, g, call.binary)
        mu, s = _latent_inputs(B, k, g, i)
        actual = _value(call, r, x, mu, s, **kw)
        kl = float(kl_normal(mu, s, parameterisation=best_k).sum())
        expected = a * _reference(best_r, r, x) + b * kl + c
        worst = max(worst, abs(actual - expected) / max(abs(actual), abs(L0), 1e-12))
    all_dl = [abs(v) for v in dl_r + dl_k] + [abs(L0)]
    return {
        "hypothesis": best_r,
        "parameterisation": best_k,
        "recon": _label(best_r),
        "likelihood": best_r[0],
        "decoder_output": best_r[1],
        "a": a,
        "recon_residual": res_a,
        "kl": best_k,
        "b": b,
        "kl_residual": res_b,
        "c": c,
        "c_relative": abs(c) / max(max(all_dl), 1e-12),
        "verify_residual": worst,
        "recon_alternatives": {_label(h): v[1] for h, v in recon_fits.items()},
        "kl_alternatives": {p: v[1] for p, v in kl_fits.items()},
    }


def _gradients(call: Caller, B: int, D: int, k: int) -> dict[str, Any]:
    g = _gen(7)
    r, x = _recon_inputs(B, D, g, call.binary)
    mu, s = _latent_inputs(B, k, g, 0)
    r.requires_grad_(True)
    mu.requires_grad_(True)
    s.requires_grad_(True)
    out = call(r, x, mu, s)
    if not out.requires_grad:
        return {"recon": False, "mu": False, "scale": False, "graph": False}
    grads = torch.autograd.grad(out, [r, mu, s], allow_unused=True)
    flags = {
        n: g_ is not None and bool(torch.isfinite(g_).all()) and float(g_.abs().max()) > 0
        for n, g_ in zip(("recon", "mu", "scale"), grads)
    }
    return {**flags, "graph": True}


def _edges(call: Caller, B: int, D: int, k: int, decoder_output: str, param: str) -> list[str]:
    g = _gen(11)
    bad = []
    _, x = _recon_inputs(B, D, g)
    mu, s = _latent_inputs(B, k, g, 0)
    if decoder_output == "probabilities":
        xb = (x > 0.5).to(DTYPE)
        for name, r in (
            ("probabilities of exactly 0 and 1 agreeing with binary data", xb.clone()),
            ("probabilities of exactly 0 and 1 opposite to binary data", 1 - xb),
        ):
            try:
                v = float(call(r, xb, mu, s).detach())
            except Exception as exc:  # noqa: BLE001 - any failure is a finding
                bad.append(f"{name}: raised {type(exc).__name__}: {exc}")
                continue
            if not math.isfinite(v):
                bad.append(f"{name}: returned {v}")
    r, x = _recon_inputs(B, D, g, call.binary)
    for lv in (20.0, -20.0):
        logvar = torch.full((B, k), lv, dtype=DTYPE)
        value = {
            "logvar": logvar,
            "log_std": logvar / 2,
            "std": torch.exp(logvar / 2),
            "var": torch.exp(logvar),
        }[param]
        try:
            v = float(call(r, x, mu, value).detach())
        except Exception as exc:  # noqa: BLE001
            bad.append(f"logvar={lv:+g}: raised {type(exc).__name__}: {exc}")
            continue
        if not math.isfinite(v):
            bad.append(f"logvar={lv:+g}: returned {v}")
    return bad


def _layouts(D: int, input_shape: tuple[int, ...] | None) -> list[tuple[int, ...]]:
    if input_shape is not None:
        return [input_shape]
    out: list[tuple[int, ...]] = [(D,)]
    side = int(round(math.sqrt(D)))
    if side * side == D:
        out.append((1, side, side))
    return out


def _double_d(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0] * 2,) if len(shape) == 1 else (shape[0], shape[1] * 2, *shape[2:])


def probe_function(
    fn: Callable[..., Any],
    role_options: list[dict[str, str]],
    extra: dict[str, Any],
    weights: dict[str, float],
    *,
    B: int,
    D: int,
    k: int,
    input_shape: tuple[int, ...] | None,
) -> dict[str, Any]:
    """Probe ``fn`` and return everything the report needs, as JSON-able data."""
    errors: list[str] = []
    best: tuple[tuple[int, float], Caller, dict[str, Any]] | None = None
    layouts = [(shape, binary) for binary in (False, True) for shape in _layouts(D, input_shape)]
    for shape, binary in layouts:
        for roles in role_options:
            call = Caller(fn, roles, extra, shape)
            call.binary = binary
            try:
                fit = fit_at(call, B, D, k)
            except ProbeFailure:
                raise
            except Exception as exc:  # noqa: BLE001 - try the next layout or role order
                text = str(exc).splitlines()[0][:200] if str(exc) else ""
                errors.append(
                    f"{'binary' if binary else 'continuous'} data of shape "
                    f"[B, {', '.join(map(str, shape))}], roles {roles}: "
                    f"{type(exc).__name__}: {text}"
                )
                continue
            parts = ("recon_residual", "kl_residual", "verify_residual")
            score = (
                -sum(fit[p] < TOLERANCE for p in parts),
                fit["recon_residual"] + fit["kl_residual"],
            )
            if best is None or score < best[0]:
                best = (score, call, fit)
            if score[0] == -3:
                break
        if best is not None and best[0][0] == -3:
            break
    if best is None:
        raise ProbeFailure("the function raised on every input layout tried:\n  " + "\n  ".join(errors[-4:]))
    _, call, fit = best
    result: dict[str, Any] = {
        "roles": call.roles,
        "input_shape": list(call.shape),
        "output": call.output,
        "fit": fit,
        "binary_data": call.binary,
    }
    fixed = (fit["hypothesis"], fit["parameterisation"])
    sizes = {}
    for name, (b2, d2, k2, shape2) in {
        "B": (2 * B, D, k, call.shape),
        "D": (B, 2 * D, k, _double_d(call.shape)),
        "k": (B, D, 2 * k, call.shape),
    }.items():
        c2 = Caller(call.fn, call.roles, extra, shape2)
        c2.binary = call.binary
        try:
            sizes[name] = fit_at(c2, b2, d2, k2, seed=1, fixed=fixed)
        except Exception as exc:  # noqa: BLE001
            sizes[name] = {"error": f"{type(exc).__name__}: {exc}"}
    result["size_fits"] = sizes
    weight_effects: dict[str, dict[str, Any]] = {}
    for pname, value in weights.items():
        try:
            f2 = fit_at(call, B, D, k, seed=2, fixed=fixed, **{pname: 2 * value if value else 1.0})
        except Exception as exc:  # noqa: BLE001
            weight_effects[pname] = {"error": str(exc)}
            continue
        weight_effects[pname] = {"a": f2["a"], "b": f2["b"], "value": value}
    result["weight_effects"] = weight_effects
    result["gradients"] = _gradients(call, B, D, k)
    result["edges"] = _edges(call, B, D, k, fit["decoder_output"], fit["kl"])
    return result
