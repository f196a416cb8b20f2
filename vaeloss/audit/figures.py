"""The report's figures, each a PNG written by one function (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from vaeloss.audit.result import AuditResult, SweepRow  # noqa: E402
from vaeloss.audit.seeds import spreads  # noqa: E402
from vaeloss.audit.stop import StopRequest  # noqa: E402
from vaeloss.engine.joined import JoinedVAE  # noqa: E402
from vaeloss.engine.models import BatchedVAE  # noqa: E402
from vaeloss.metrics import ACTIVE_THRESHOLD  # noqa: E402
from vaeloss.objective.likelihoods import decoder_mean  # noqa: E402

if TYPE_CHECKING:
    from vaeloss.audit.pipeline import AuditRun

__all__ = ["TSNE_ITERATIONS", "TSNE_POINTS", "draw_all", "image_grid_figure", "kl_bars_figure"]

TSNE_POINTS = 500
"""Rows the t-SNE embeds at most (a random subset): its cost grows faster than the rows."""
TSNE_ITERATIONS = 500
"""Optimisation steps of the t-SNE (scikit-learn's default is 1000; 500 settles the map of up
to 500 points, at half the cost)."""


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _fmt(b: float) -> str:
    return f"{b:.3g}"


def curves(history: pd.DataFrame, model: int, beta_label: str, path: Path) -> str:
    h = history[history.model == model]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for col, style in (("train", "-"), ("val", "--")):
        axes[0].plot(h.epoch, h[f"{col}_recon"], style, label=col)
        axes[1].plot(h.epoch, h[f"{col}_kl"], style, label=col)
    axes[0].set(title="reconstruction NLL (nats/sample)", xlabel="epoch")
    axes[1].set(title="KL (nats/sample)", xlabel="epoch")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"training curves at beta = {beta_label}")
    return _save(fig, path)


def kl_bars_figure(kl: list[float], active: list[bool], title: str = "KL per latent dim") -> Any:
    """The KL of each latent dim (nats per sample) as bars, the active dims blue."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    colors = ["tab:blue" if a else "lightgray" for a in active]
    ax.bar(range(len(kl)), kl, color=colors)
    ax.set(title=f"{title} ({sum(active)} active: blue)", xlabel="latent dim", ylabel="nats")
    ax.set_xticks(range(len(kl)))
    fig.tight_layout()
    return fig


def kl_bars(kl: list[float], active: list[bool], path: Path) -> str:
    return _save(kl_bars_figure(kl, active), path)


def _grid(images: np.ndarray, rows: int, cols: int, shape: tuple[int, ...]) -> np.ndarray:
    c, h, w = shape if len(shape) == 3 else (1, *shape)
    imgs = images.reshape(-1, c, h, w)[: rows * cols]
    canvas = np.ones((rows * (h + 1), cols * (w + 1)))
    for i, im in enumerate(imgs):
        r, q = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = im.mean(0)
    return canvas


def image_grid_figure(
    rows_of: list[tuple[str, np.ndarray]], shape: tuple[int, ...], cols: int, title: str
) -> Any:
    """Rows of images (each ``[n, *shape]`` or ``[n, D]``, values in [0, 1]), one labelled row each."""
    fig, axes = plt.subplots(
        len(rows_of), 1, figsize=(cols * 0.6 + 1, 0.8 * len(rows_of) + 0.8), squeeze=False
    )
    for ax, (label, imgs) in zip(axes[:, 0], rows_of):
        ax.imshow(_grid(imgs, 1, cols, shape), cmap="gray", vmin=0, vmax=1)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig


def image_grid(
    rows_of: list[tuple[str, np.ndarray]], shape: tuple[int, ...], cols: int, title: str, path: Path
) -> str:
    return _save(image_grid_figure(rows_of, shape, cols, title), path)


def samples(images: np.ndarray, shape: tuple[int, ...], title: str, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(_grid(images, 8, 8, shape), cmap="gray", vmin=0, vmax=1)
    ax.set(title=title, xticks=[], yticks=[])
    return _save(fig, path)


def latent_scatter(
    mu: np.ndarray, labels: np.ndarray | None, title: str, path: Path, seed: int = 0, tsne: bool = True
) -> str:
    """Latent means coloured by label: direct for k <= 2, else PCA and (``tsne``) t-SNE."""
    k = mu.shape[1]
    c = labels if labels is not None else None
    cm: dict[str, Any] = {"c": c, "cmap": "tab10"} if c is not None else {}
    if k <= 2:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        pts = mu if k == 2 else np.c_[mu, np.zeros(len(mu))]
        sc = ax.scatter(pts[:, 0], pts[:, 1], s=8, **cm)
        ax.set(title=f"{title}: latent means", xlabel="z1", ylabel="z2")
        if c is not None:
            fig.colorbar(sc, ax=ax, label="label")
        return _save(fig, path)
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    spread = float(mu.std(0).sum())
    pca = PCA(2).fit_transform(mu) if spread > 1e-8 else np.zeros((len(mu), 2))
    axes[0].scatter(pca[:, 0], pca[:, 1], s=8, **cm)
    axes[0].set(title=f"latent means, PCA (total std {spread:.2g})", xlabel="PC1", ylabel="PC2")
    if spread > 1e-8 and tsne:
        rows = np.random.default_rng(seed).permutation(len(mu))[:TSNE_POINTS]
        sub = mu[rows]
        emb = TSNE(
            2, random_state=seed, init="pca", perplexity=min(30, len(sub) - 1), max_iter=TSNE_ITERATIONS
        ).fit_transform(sub)
        sc = axes[1].scatter(
            emb[:, 0], emb[:, 1], s=8, **({"c": c[rows], "cmap": "tab10"} if c is not None else {})
        )
        if c is not None:
            fig.colorbar(sc, ax=axes[1], label="label")
    else:
        axes[1].text(
            0.5,
            0.5,
            "all latent means are equal:\nnothing to embed"
            if tsne
            else "t-SNE skipped:\nthe audit was interrupted",
            ha="center",
            va="center",
            transform=axes[1].transAxes,
        )
    shown = min(len(mu), TSNE_POINTS)
    axes[1].set(
        title=f"latent means, t-SNE ({shown} of {len(mu)} rows)" if shown < len(mu) else "latent means, t-SNE"
    )
    fig.suptitle(title)
    return _save(fig, path)


def manifold(decode: Any, shape: tuple[int, ...], path: Path, title: str, n: int = 15) -> str:
    grid = np.linspace(-3, 3, n)
    z = torch.tensor([[a, b] for b in grid[::-1] for a in grid], dtype=torch.float32)
    imgs = decode(z).cpu().numpy()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(_grid(imgs, n, n, shape), cmap="gray", vmin=0, vmax=1, extent=(-3, 3, -3, 3))
    ax.set(title=title, xlabel="z1", ylabel="z2")
    return _save(fig, path)


def _seed_spread(ax: Any, sweep: list[SweepRow], at: dict[int, tuple[float, float]]) -> None:
    """Each seed's point (small), and each beta's mean with bars of one standard deviation
    across its seeds, joined in the order of the betas."""
    ax.scatter([p[0] for p in at.values()], [p[1] for p in at.values()], s=12, color="tab:gray", alpha=0.5)
    means = [b for b in spreads(sweep) if "kl" in b.metrics and "recon" in b.metrics]
    kl, recon = [b.metrics["kl"] for b in means], [b.metrics["recon"] for b in means]
    ax.errorbar(
        [k.mean for k in kl],
        [r.mean for r in recon],
        xerr=[k.std or 0.0 for k in kl],
        yerr=[r.std or 0.0 for r in recon],
        fmt="o-",
        color="tab:gray",
        capsize=3,
        label="mean ± std across seeds",
        zorder=1,
    )
    for b, k, r in zip(means, kl, recon):
        ax.annotate(
            f"{_fmt(b.kl_weight)}", (k.mean, r.mean), textcoords="offset points", xytext=(5, 4), fontsize=8
        )


def rate_distortion(sweep: list[SweepRow], current: int, recommended: int | None, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    at = {
        i: (r.metrics.kl, r.metrics.recon)
        for i, r in enumerate(sweep)
        if r.metrics is not None and r.metrics.recon is not None
    }
    measured = [(i, r) for i, r in enumerate(sweep) if i in at]
    rate = [at[i][0] for i, _ in measured]
    dist = [at[i][1] for i, _ in measured]
    if len({r.elbo_beta for _, r in measured}) < len(measured):  # several seeds per beta
        _seed_spread(ax, sweep, at)
    else:
        ax.plot(rate, dist, "o-", color="tab:gray", zorder=1)
        for i, r in measured:
            ax.annotate(f"{_fmt(r.kl_weight)}", at[i], textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.scatter(
        [at[current][0]] if current in at else [],
        [at[current][1]] if current in at else [],
        s=140,
        facecolors="none",
        edgecolors="tab:red",
        linewidths=2,
        label="current beta",
        zorder=3,
    )
    ax.scatter(
        [at[recommended][0]] if recommended in at else [],
        [at[recommended][1]] if recommended in at else [],
        s=90,
        marker="*",
        color="tab:green",
        label="recommended beta",
        zorder=3,
    )
    ax.set(
        xlabel="rate: KL (nats/sample)",
        ylabel="distortion: reconstruction NLL (nats/sample)",
        title="rate-distortion plane of the sweep (labels: your KL weight)",
    )
    if rate and max(rate) > 0 and min(rate) >= 0 and max(rate) / max(min(rate), 1e-3) > 100:
        ax.set_xscale("symlog", linthresh=0.1)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def sweep_panels(
    run: AuditRun, decode_s: Any, mus: list[np.ndarray], labels: np.ndarray | None, out: Path
) -> dict[str, str]:
    """For k = 2: latent scatter and decoded manifold of every model of the sweep."""
    sweep = run.result.sweep
    n = len(sweep)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        ax.scatter(
            mus[i][:, 0], mus[i][:, 1], s=4, **({"c": labels, "cmap": "tab10"} if labels is not None else {})
        )
        m = sweep[i].metrics
        ax.set(
            title=f"weight {_fmt(sweep[i].kl_weight)}: AU {'-' if m is None else m.active_units}",
            xlim=(-4, 4),
            ylim=(-4, 4),
        )
    fig.suptitle("latent means across the sweep (colour: label)")
    files = {"sweep_latents": _save(fig, out / "sweep_latents.png")}
    if len(run.data.shape) in (2, 3):
        grid = np.linspace(-3, 3, 10)
        z = torch.tensor([[a, b] for b in grid[::-1] for a in grid], dtype=torch.float32)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.3 * rows), squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                ax.imshow(
                    _grid(decode_s(z, i).cpu().numpy(), 10, 10, run.data.shape), cmap="gray", vmin=0, vmax=1
                )
                ax.set_title(f"weight {_fmt(sweep[i].kl_weight)}")
        fig.suptitle("decoded 2-D manifold over [-3, 3]^2 across the sweep")
        files["sweep_manifolds"] = _save(fig, out / "sweep_manifolds.png")
    return files


Figure = Callable[[], "str | dict[str, str]"]


@dataclass
class _Scene:
    """What the figures of one audit are drawn from: the audited model's latent means of the
    rows the evaluation measured, and its decoder."""

    run: AuditRun
    out: Path
    x: torch.Tensor
    mu: torch.Tensor
    mu_all: torch.Tensor | None
    labels: np.ndarray | None
    beta_label: str

    def decode_s(self, z: torch.Tensor, i: int) -> torch.Tensor:
        model, setup = self.run.model, self.run.result.setup
        assert model is not None
        out = model.decode_one(i, z.to(self.x.device))
        return decoder_mean(out, setup.decoder_output, setup.likelihood).clamp(0, 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_s(z, self.run.result.current)


def _scene(run: AuditRun, out: Path) -> _Scene:
    res, model = run.result, run.model
    assert model is not None
    device = next(model.parameters()).device
    # the rows the evaluation measured (fewer for a slow model), and at most the t-SNE's
    rows = min(TSNE_POINTS, res.evaluation.rows if res.evaluation is not None else TSNE_POINTS)
    x = run.data.x_val[:rows].to(device)
    # the sweep's panels need every model
    panels = (
        model.latent_dim == 2 and model.n_models > 1 and (not isinstance(model, JoinedVAE) or model.complete)
    )
    mu_all = model.encode(x)[0] if panels else None
    mu = mu_all[res.current] if mu_all is not None else model.encode_one(res.current, x)[0]
    labels = run.data.y_val[: len(mu)].numpy() if run.data.y_val is not None else None
    return _Scene(run, out, x, mu, mu_all, labels, _beta_label(res))


def _beta_label(res: AuditResult) -> str:
    return f"{_fmt(res.objective.kl_weight)} (your units) = {_fmt(res.elbo_beta)} (ELBO)"


def _image_figures(sc: _Scene) -> list[tuple[str, Figure]]:
    """Inputs vs reconstructions, prior samples, and the decoded 2-D manifold (k = 2)."""
    res, shape, out = sc.run.result, sc.run.data.shape, sc.out
    cur, n = res.current_row.metrics, 12
    diversity = (
        "" if cur is None or cur.output_diversity is None else f" (diversity {cur.output_diversity:.2f})"
    )
    rows_of = [("input", sc.x[:n].cpu().numpy()), ("recon", sc.decode(sc.mu[:n]).cpu().numpy())]
    prior = torch.randn(64, sc.mu.shape[1], generator=torch.Generator().manual_seed(res.setup.seed))
    todo: list[tuple[str, Figure]] = [
        (
            "reconstructions",
            lambda: image_grid(
                rows_of, shape, n, f"inputs vs reconstructions{diversity}", out / "reconstructions.png"
            ),
        ),
        (
            "samples",
            lambda: samples(
                sc.decode(prior).cpu().numpy(), shape, "samples from the prior", out / "samples.png"
            ),
        ),
    ]
    if sc.mu.shape[1] == 2:
        title = f"decoded latent grid at beta = {sc.beta_label}"
        todo.append(("manifold", lambda: manifold(sc.decode, shape, out / "manifold.png", title)))
    return todo


def _figures(run: AuditRun, out: Path, quick: bool) -> list[tuple[str, Figure]]:
    """Every figure of the report, in order, each a function that draws it (those of the
    audited model only when it came back: its group was not lost)."""
    res, s = run.result, run.result.current
    cur = res.current_row.metrics
    todo: list[tuple[str, Figure]] = []
    if not run.history.empty and (run.history.model == s).any():
        todo.append(("curves", lambda: curves(run.history, s, _beta_label(res), out / "curves.png")))
    if cur is not None:
        active = [v > ACTIVE_THRESHOLD for v in cur.au_variances]
        todo.append(("kl_per_dim", lambda: kl_bars(cur.kl_per_dim, active, out / "kl_per_dim.png")))
    if _runs(run.model, s):
        todo += _model_figures(_scene(run, out), quick)
    if len(res.sweep) > 1:
        rec = None if res.recommendation is None else res.recommendation.index
        todo.append(
            (
                "rate_distortion",
                lambda: rate_distortion(res.sweep, res.current, rec, out / "rate_distortion.png"),
            )
        )
    return todo


def _runs(model: BatchedVAE | None, s: int) -> bool:
    """Whether model s of the sweep is here to be drawn from."""
    return model is not None and (not isinstance(model, JoinedVAE) or model.runs(s))


def _model_figures(sc: _Scene, quick: bool) -> list[tuple[str, Figure]]:
    """The figures drawn from the audited model (and the sweep's, for the 2-D panels)."""
    run, out = sc.run, sc.out
    res = run.result
    todo: list[tuple[str, Figure]] = []
    if len(run.data.shape) in (2, 3):
        todo += _image_figures(sc)
    todo.append(
        (
            "latent",
            lambda: latent_scatter(
                sc.mu.cpu().numpy(),
                sc.labels,
                f"beta = {sc.beta_label}",
                out / "latent.png",
                res.setup.seed,
                tsne=not quick,
            ),
        )
    )
    if sc.mu_all is not None:
        mus = [m.cpu().numpy() for m in sc.mu_all]
        todo.append(("sweep", lambda: sweep_panels(run, sc.decode_s, mus, sc.labels, out)))
    return todo


@torch.no_grad()
def draw_all(run: AuditRun, out: Path, stop: StopRequest | None = None) -> dict[str, str]:
    """Every figure of the report into ``out``; returns {name: file}.

    ``stop`` is asked between figures: when it says stop, the figures not drawn yet are left out
    and the result is marked as cut short in its figures. When it already says stop at the
    start (an earlier phase was interrupted), every figure is drawn but the t-SNE.
    """
    stop = stop or StopRequest()
    quick = stop()
    files: dict[str, str] = {}
    for name, draw in _figures(run, out, quick):
        if not quick and stop():
            run.result.interrupt("figures", stop.reason)
            break
        drawn = draw()
        files.update(drawn if isinstance(drawn, dict) else {name: drawn})
    return files
