"""The generator's truth confirmed without its algebra: a PyTorch file's own loss is called on
float64 tensors and its factors measured against ``torch.distributions``.

With the loss ``L = a * sum NLL + b * sum KL + const``, moving only the reconstruction changes
``L`` by ``a`` times the change of the summed NLL (``Bernoulli``, ``Normal(r, 1)``,
``Laplace(r, 1)``'s ``log_prob``), and moving only the posterior changes it by ``b`` times
the change of the summed KL (``kl_divergence(Normal(mu, std), Normal(0, 1))``). A loss that
returns one value per sample is summed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from lossgen import NAMES, Spec
from render import _FUNCTION_NAMES, render
from torch import distributions as dist

CONFIRMABLE_SHAPES = ("function", "packed", "class-call", "module-forward", "model-method")


def confirmable(spec: Spec) -> bool:
    """PyTorch losses callable by themselves, with an exact KL."""
    return spec.framework == "torch" and spec.shape in CONFIRMABLE_SHAPES and not spec.monte_carlo


def _load(path: Path) -> object:
    argv = sys.argv
    sys.argv = [str(path)]  # the file's argparse reads its own defaults
    try:
        module_spec = importlib.util.spec_from_file_location(f"generated_{abs(hash(path))}", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    finally:
        sys.argv = argv
    return module


def _callable(spec: Spec, module: object) -> object:
    B, D, k = spec.sizes
    if spec.shape in ("function", "packed"):
        return getattr(module, _FUNCTION_NAMES[spec.names % len(_FUNCTION_NAMES)])
    if spec.shape in ("class-call", "module-forward"):
        return module.VAELoss()
    return module.VAE(data_dim=D, latent_dim=k).loss_function


def _tensors(spec: Spec, g: torch.Generator) -> dict[str, torch.Tensor]:
    B, D, k = spec.sizes
    shape = (B, D)
    n = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    recon = {
        "bernoulli": lambda: torch.rand(shape, generator=g, dtype=torch.float64) * 0.9 + 0.05,
        "bernoulli_logits": lambda: n(*shape),
    }.get(spec.likelihood, lambda: n(*shape))()
    scale = {
        "logvar": lambda: 0.5 * n(B, k),
        "log_std": lambda: 0.3 * n(B, k),
        "std": lambda: torch.exp(0.3 * n(B, k)),
        "var": lambda: torch.exp(0.3 * n(B, k)),
    }[spec.param]()
    return {"recon": recon, "mu": n(B, k), "scale": scale}


def _nll(spec: Spec, recon: torch.Tensor, x: torch.Tensor) -> float:
    d = {
        "bernoulli": lambda: dist.Bernoulli(probs=recon),
        "bernoulli_logits": lambda: dist.Bernoulli(logits=recon),
        "gaussian": lambda: dist.Normal(recon, 1.0),
        "laplace": lambda: dist.Laplace(recon, 1.0),
    }[spec.likelihood]()
    return float(-d.log_prob(x).sum())


def _kl(spec: Spec, mu: torch.Tensor, scale: torch.Tensor) -> float:
    std = {
        "logvar": lambda: torch.exp(0.5 * scale),
        "log_std": lambda: torch.exp(scale),
        "std": lambda: scale,
        "var": lambda: scale.sqrt(),
    }[spec.param]()
    return float(dist.kl_divergence(dist.Normal(mu, std), dist.Normal(0.0, 1.0)).sum())


def _value(spec: Spec, loss: object, x: torch.Tensor, t: dict[str, torch.Tensor]) -> float:
    R, X, M, S = t["recon"], x, t["mu"], t["scale"]
    args: list[object] = {
        "recon,data,mu,scale": [R, X, M, S],
        "data,recon,mu,scale": [X, R, M, S],
        "recon,data,(mu,scale)": [R, X, (M, S)],
    }[spec.order]
    if spec.shape == "packed":
        args = [(R, M, S), X]
    kwargs = {"beta": float(spec.weight)} if spec.weight_source == "required" else {}
    out = loss(*args, **kwargs)
    out = out["loss"] if isinstance(out, dict) else out[0] if isinstance(out, tuple) else out
    out = out.loss if hasattr(out, "reconstruction") else out  # the file's LossOutput
    return float(out.sum())


def measured_factors(spec: Spec, folder: Path) -> tuple[float, float]:
    """``(a, b)`` of the file's loss at the spec's sizes, measured in PyTorch."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "confirm_loss.py"
    path.write_text(render(spec))
    loss = _callable(spec, _load(path))
    g = torch.Generator().manual_seed(0)
    B, D, k = spec.sizes
    binary = torch.bernoulli(torch.full((B, D), 0.5, dtype=torch.float64), generator=g)
    x = binary if "bernoulli" in spec.likelihood else None  # a Bernoulli's own sample space
    x = torch.randn(B, D, generator=g, dtype=torch.float64) if x is None else x
    one, two = _tensors(spec, g), _tensors(spec, g)
    moved_recon = {**one, "recon": two["recon"]}
    a = (_value(spec, loss, x, moved_recon) - _value(spec, loss, x, one)) / (
        _nll(spec, two["recon"], x) - _nll(spec, one["recon"], x)
    )
    moved_posterior = {**one, "mu": two["mu"], "scale": two["scale"]}
    b = (_value(spec, loss, x, moved_posterior) - _value(spec, loss, x, one)) / (
        _kl(spec, two["mu"], two["scale"]) - _kl(spec, one["mu"], one["scale"])
    )
    return a, b


__all__ = ["NAMES", "confirmable", "measured_factors"]
