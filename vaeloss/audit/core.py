"""Run an audit: resolve the convention, train a batched beta sweep, measure, recommend."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from vaeloss.audit.defaults import defaults_for
from vaeloss.audit.recommend import best_iwae, collapse_points, prediction_check
from vaeloss.audit.verdict import classify
from vaeloss.conventions import Convention
from vaeloss.data import Dataset, load_dataset, prepare_for_likelihood
from vaeloss.errors import InvalidArgumentError, LossCheckError
from vaeloss.evaluate import evaluate_models
from vaeloss.models import BatchedVAE, build_model
from vaeloss.presets import get_convention
from vaeloss.trainer import TrainConfig, TrainResult, resolve_device, train
from vaeloss.validation import check_nonnegative, check_positive, check_positive_int

__all__ = ["AuditOptions", "AuditRun", "run_audit"]

AUTO_GRID = (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)


@dataclass
class AuditOptions:
    """Options of ``vaeloss audit`` (see ``vaeloss audit --help``)."""

    loss: str | None = None
    convention: str | None = None
    beta: float | None = None
    data: str = "digits"
    data_dir: str | None = None
    download: bool = False
    binarize: str = "none"
    rescale: bool = False
    model: str = "mlp"
    hidden: tuple[int, ...] | None = None
    latent_dim: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    sweep: str = "auto"
    device: str = "auto"
    seed: int = 0
    iwae_samples: int = 1000
    progress: bool | None = None
    calibrate: bool = True


@dataclass
class AuditRun:
    """Everything an audit produced: the JSON-able result and what the report draws from."""

    result: dict[str, Any]
    data: Dataset
    model: BatchedVAE
    history: pd.DataFrame
    current: int
    recommended: int
    likelihood: str
    sigma: float
    extras: dict[str, Any] = field(default_factory=dict)


def _sweep_values(text: str) -> list[float] | None:
    if text in ("auto", "none"):
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise InvalidArgumentError(
            f"Expected --sweep auto|none|X,Y,... (numbers >= 0) but got sweep={text!r}. Try --sweep 0.1,1,10."
        )
    return values


def _convention(
    opts: AuditOptions, B: int, D: int, k: int, shape: tuple[int, ...]
) -> tuple[Convention, float, str]:
    """The convention audited, the user's own KL multiplier, and a description."""
    if opts.loss and opts.convention:
        raise InvalidArgumentError(
            f"Expected --loss or --convention, not both, but got loss={opts.loss!r}, "
            f"convention={opts.convention!r}. Try one of them."
        )
    if opts.loss:
        from vaeloss.check.runner import check_loss

        # flat [B, D] inputs first; check falls back to [B, 1, H, W] for square D by itself
        report = check_loss(opts.loss, batch_size=B, data_dim=D, latent_dim=k)
        if report.recon_factor is None or report.kl_factor is None or report.likelihood is None:
            codes = ", ".join(f.code for f in report.findings if f.severity != "info")
            raise LossCheckError(
                f"Expected a loss of the form a*NLL + b*KL that check can read, but "
                f"{opts.loss} is not ({codes}). Try 'vaeloss check {opts.loss}' for details, "
                f"or --convention NAME."
            )
        if report.kl_factor.coef <= 0:
            raise LossCheckError(
                f"Expected a positive KL term but {opts.loss} has factor "
                f"{report.kl_factor.formula()}. Try 'vaeloss check {opts.loss}'."
            )
        conv = Convention(
            f"{report.path}:{report.function}",
            report.likelihood,  # type: ignore[arg-type]
            report.recon_factor,
            report.kl_factor,
            description="your loss, as found by vaeloss check",
        )
        own = 1.0 if opts.beta is None else opts.beta
        return conv, own, f"{report.function} in {opts.loss}"
    if opts.convention:
        conv = get_convention(opts.convention)
        own = float(conv.kl_weight) if opts.beta is None else opts.beta
        return conv.with_kl_weight(1), own, f"the {conv.name} convention"
    conv = get_convention("per_sample_mean")
    return conv, 1.0 if opts.beta is None else opts.beta, "the per-sample ELBO"


def run_audit(opts: AuditOptions) -> AuditRun:
    """Validate everything, then train and measure. Raises before any work on bad input."""
    if opts.beta is not None:
        check_nonnegative("beta", opts.beta)
    own_sweep = _sweep_values(opts.sweep)
    device = resolve_device(opts.device)
    d = defaults_for(opts.data)
    hidden = tuple(opts.hidden) if opts.hidden is not None else tuple(d["hidden"])
    k = check_positive_int("latent_dim", d["latent_dim"] if opts.latent_dim is None else opts.latent_dim)
    B = check_positive_int("batch_size", d["batch_size"] if opts.batch_size is None else opts.batch_size)
    epochs = check_positive_int("epochs", d["epochs"] if opts.epochs is None else opts.epochs)
    lr = check_positive("lr", d["lr"] if opts.lr is None else opts.lr)
    check_positive_int("iwae_samples", opts.iwae_samples)
    model_kind = opts.model
    ds = load_dataset(
        opts.data,
        data_dir=opts.data_dir,
        download=opts.download,
        likelihood=None,
        rescale=opts.rescale,
        seed=opts.seed,
    )
    D = ds.dim
    # build one model first so that a bad --model fails before any training; a user's model
    # decides its own latent dim
    probe = build_model(
        model_kind, data_dim=D, shape=ds.shape, hidden=hidden, latent_dim=k, n_models=1, seeds=[opts.seed]
    )
    if model_kind not in ("mlp", "conv", "linear"):
        with torch.no_grad():
            k = int(probe.encode(ds.x_train[:2])[0].shape[-1])
        probe.latent_dim = k
    conv, own, described = _convention(opts, B, D, k, ds.shape)
    likelihood = conv.likelihood
    ds = prepare_for_likelihood(ds, likelihood, binarization=opts.binarize, seed=opts.seed)  # type: ignore[arg-type]
    sizes = {"B": B, "D": D, "k": k}
    current_elbo = conv.with_kl_weight(own).effective_beta(**sizes)
    if own_sweep is not None:
        betas = sorted({current_elbo, *(conv.with_kl_weight(w).effective_beta(**sizes) for w in own_sweep)})
    elif opts.sweep == "none":
        betas = [current_elbo]
    else:
        grid = [b for b in AUTO_GRID if abs(math.log(b) - math.log(current_elbo or 1e-12)) > 0.05]
        betas = sorted({current_elbo, *grid})
    current = betas.index(current_elbo)
    S = len(betas)
    model = build_model(
        model_kind, data_dim=D, shape=ds.shape, hidden=hidden, latent_dim=k, n_models=S, seeds=[opts.seed] * S
    )
    gauss = likelihood == "gaussian"
    cfg = TrainConfig(
        betas=betas,
        likelihood=likelihood,
        sigma=1.0,
        loss_scale=conv.gradient_scale(**sizes),
        epochs=epochs,
        batch_size=B,
        lr=lr,
        seed=opts.seed,
        model_seeds=[opts.seed] * S,
        device=str(device),
        progress=opts.progress,
        full_batch=opts.model == "linear",
        cosine_lr=opts.model == "linear",
    )
    tr: TrainResult = train(model, ds, cfg)
    metrics = evaluate_models(
        model, ds.x_val, likelihood=likelihood, sigma=1.0, iwae_samples=opts.iwae_samples, seed=opts.seed
    )
    sweep = []
    for s, (beta, m) in enumerate(zip(betas, metrics)):
        stopped = tr.stopped[s]
        row = {
            "beta_elbo": beta,
            "beta_own": conv.kl_weight_for(beta, **sizes),
            **m,
            "ratio_kl_recon": m["kl"] / m["recon"] if m["recon"] else math.inf,
            "stopped": stopped,
        }
        row["verdict"], row["collapsed"], _ = classify(m, k)
        sweep.append(row)
    cur = sweep[current]
    verdict, collapsed, headline = classify(cur, k)
    extras: dict[str, Any] = {}
    if gauss and opts.calibrate and not tr.interrupted:
        sigma2, trace = calibrate_sigma(ds, model_kind, hidden, k, cfg, opts.seed)
        rec_elbo = sigma2
        rule = "sigma-calibration"
        reason = (
            f"for a squared-error loss beta is the decoder variance; the maximum-likelihood "
            f"decoder variance of the trained model is sigma^2 = {sigma2:.4g} "
            f"(iterates: {', '.join(f'{v:.4g}' for v in trace)})"
        )
        extras["sigma_trace"] = trace
        recommended = min(range(S), key=lambda i: abs(math.log(max(betas[i], 1e-12) / sigma2)))
    else:
        best = best_iwae(sweep)
        recommended = sweep.index(best)
        rec_elbo = best["beta_elbo"]
        rule = "best-held-out-iwae"
        reason = (
            f"lowest held-out IWAE NLL ({best['iwae_nll']:.2f} nats, K={opts.iwae_samples}) "
            f"among {S} betas, with {best['active_units']} of {k} dims active"
        )
    ref = sweep[recommended]
    points = collapse_points(ref["beta_elbo"], ref["kl_per_dim"])
    check = prediction_check(points, sweep)
    result = {
        "verdict": verdict,
        "collapsed": collapsed,
        "headline": headline,
        "partial": tr.interrupted,
        "convention": conv.name,
        "described": described,
        "likelihood": likelihood,
        "data": opts.data,
        "model": opts.model,
        "latent_dim": k,
        "batch_size": B,
        "data_dim": D,
        "epochs": epochs,
        "steps": tr.steps,
        "seed": opts.seed,
        "device": tr.device,
        "beta_own": own,
        "effective_beta": current_elbo,
        "effective_beta_formula": conv.with_kl_weight(own).effective_beta_formula,
        "active_units": cur["active_units"],
        "kl_per_dim": cur["kl_per_dim"],
        "kl": cur["kl"],
        "recon": cur["recon"],
        "ratio_kl_recon": cur["ratio_kl_recon"],
        "mutual_information": cur["mutual_information"],
        "iwae_nll": cur["iwae_nll"],
        "marginal_kl": cur["marginal_kl"],
        "aggregate_kl": cur["aggregate_kl"],
        "output_diversity": cur["output_diversity"],
        "latent_usage": cur["latent_usage"],
        "recommended_beta": {
            "own_units": conv.kl_weight_for(rec_elbo, **sizes),
            "elbo": rec_elbo,
            "rule": rule,
            "reason": reason,
        },
        "collapse_points": {
            "reference_beta": ref["beta_elbo"],
            "betas": points,
            "own_units": [conv.kl_weight_for(p, **sizes) for p in points],
            "check": check,
        },
        "sweep": sweep,
        "stopped": tr.stopped,
        "seconds_training": tr.seconds,
        "report_dir": None,
    }
    return AuditRun(result, ds, model, tr.history, current, recommended, likelihood, 1.0, extras)


def calibrate_sigma(
    ds: Dataset,
    model_kind: str,
    hidden: tuple[int, ...],
    k: int,
    cfg: TrainConfig,
    seed: int,
    rounds: int = 3,
) -> tuple[float, list[float]]:
    """sigma-VAE calibration: train with the ML shared variance, then refine with fixed sigma.

    Returns the final ML decoder variance and the iterates."""
    model = build_model(
        model_kind, data_dim=ds.dim, shape=ds.shape, hidden=hidden, latent_dim=k, n_models=1, seeds=[seed]
    )
    base = dict(cfg.__dict__)
    base.update(betas=[1.0], model_seeds=[seed], loss_scale=1.0, progress=False)
    train(model, ds, TrainConfig(**{**base, "optimal_sigma": True}))
    trace = []
    sigma2 = _ml_variance(model, ds)
    trace.append(sigma2)
    for _ in range(rounds - 1):
        epochs = max(1, cfg.epochs // 3)
        train(model, ds, TrainConfig(**{**base, "sigma": math.sqrt(sigma2), "epochs": epochs}))
        sigma2 = _ml_variance(model, ds)
        trace.append(sigma2)
    return sigma2, trace


@torch.no_grad()
def _ml_variance(model: BatchedVAE, ds: Dataset) -> float:
    device = next(model.parameters()).device
    x = ds.x_train.to(device)
    mu, logvar = model.encode(x)
    g = torch.Generator(device=device).manual_seed(0)
    errs = []
    for _ in range(8):
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g, device=device)
        errs.append((model.decode(z)[0] - x).square().mean())
    return float(torch.stack(errs).mean())
