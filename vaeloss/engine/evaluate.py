"""Evaluate every model of a trained batch on held-out data: the collapse metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from vaeloss.engine.models import BatchedVAE, model_seeds
from vaeloss.engine.progress import Progress, progress_mode
from vaeloss.jsontypes import JsonObject
from vaeloss.metrics import (
    CollapseSummary,
    iwae_bound,
    latent_usage_from,
    output_diversity,
    summarize,
)
from vaeloss.metrics.noise import ModelNoise
from vaeloss.objective.kl import reparameterise
from vaeloss.objective.likelihoods import (
    DecoderOutput,
    Likelihood,
    decoder_mean,
    default_decoder_output,
    element_nll,
)
from vaeloss.threads import ThreadTuner, choose_threads

__all__ = [
    "MIN_ROWS",
    "EvaluationPlan",
    "ModelMetrics",
    "choose_evaluation",
    "evaluate_models",
    "plan_evaluation",
    "time_pass",
]


@dataclass(frozen=True, kw_only=True)
class ModelMetrics(CollapseSummary):
    """The collapse metrics of one model on held-out data (nats per sample unless stated): its
    posteriors' :class:`~vaeloss.metrics.CollapseSummary`, and what needs the decoder.

    Attributes:
        recon: reconstruction NLL (Monte-Carlo estimate); elbo: ``-(recon + kl)``.
        iwae_nll: importance-weighted bound on -log p(x); iwae_se: its Monte-Carlo standard
            error (delta method, see :func:`_iwae_chunked`).
        output_diversity: pairwise distance of reconstructions relative to the inputs' (ratio).
        latent_usage: change of the output when z is replaced by a prior sample (ratio).
        iwae_samples: K the IWAE bound was computed from (fewer than planned when the
            evaluation's budget ran out; None when it was not computed).

    A value is None when its stage was not reached (the evaluation was interrupted).
    """

    recon: float | None
    elbo: float | None
    iwae_nll: float | None
    iwae_se: float | None
    output_diversity: float | None
    latent_usage: float | None
    iwae_samples: int | None = None

    def to_json(self) -> JsonObject:
        out: JsonObject = asdict(self)
        return out


@dataclass(frozen=True)
class EvaluationPlan:
    """How much the evaluation measures, chosen to fit its time budget.

    Attributes:
        iwae_samples: K of the IWAE bound (0: no IWAE bound fits the budget).
        rows: held-out rows used.
        recon_samples: posterior samples of the reconstruction term.
        decode_seconds: measured seconds of one pass of the decoder and the likelihood over
            ``rows`` rows for all models (one posterior sample per row).
        budget_seconds: the budget it was chosen for (None: no budget, K as asked).
        estimated_seconds: the evaluation's expected duration at the measured speed.
        fits: whether even this, the smallest evaluation, fits the budget.
        samples_per_call: most posterior samples per decoder call (None: as memory allows),
            so that a slow decoder's call stays a small part of the budget.
    """

    iwae_samples: int
    rows: int
    decode_seconds: float = 0.0
    budget_seconds: float | None = None
    recon_samples: int = 16
    estimated_seconds: float = 0.0
    fits: bool = True
    samples_per_call: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def samples_per_call(n_models: int, rows: int, data_dim: int) -> int:
    """Posterior samples per decoder call: at most 100, and at most ~8M output elements per
    call (a conv decoder's activations are many times its output).

    >>> samples_per_call(9, 359, 64), samples_per_call(1, 100, 12288)
    (40, 6)
    """
    return max(1, min(100, 2**23 // (n_models * rows * data_dim)))


PREFERRED_SAMPLES = 64
"""K is lowered below this only once the rows are down to :data:`PREFERRED_ROWS` (a small K
loosens the bound, by different amounts for different models)."""
PREFERRED_ROWS = 200
"""The rows are lowered below this only once K is down to :data:`FEW_SAMPLES`."""
FEW_SAMPLES = 8
MIN_ROWS = 50
"""The fewest held-out rows the collapse metrics need: active units are a variance over rows,
the mutual information estimate cannot exceed log N (3.9 nats at 50), output diversity
compares pairs of rows."""
RECON_SAMPLES = 16
PROBE_ROWS = 32
"""Rows of the first, cheap timing of a decoder pass."""
PLAN_SHARE = 0.9
"""The share of the budget the decoder passes are planned for (the rest: the posterior metrics,
the bound's own arithmetic, a slower machine)."""
_OTHER_PASSES = 3
"""Passes besides the IWAE and reconstruction samples: the encoder, the decoded means, and the
decoded prior samples."""


def choose_evaluation(
    pass_seconds: float,
    rows: int,
    budget_seconds: float | None,
    *,
    max_samples: int,
    recon_samples: int = RECON_SAMPLES,
) -> EvaluationPlan:
    """K, the rows and the reconstruction samples that fit ``budget_seconds``, from the
    seconds of one decoder-and-likelihood pass over ``rows`` rows (cost taken as linear in the
    rows). In order, while the evaluation does not fit: K down to
    :data:`PREFERRED_SAMPLES`, the rows down to :data:`PREFERRED_ROWS`, K down to
    :data:`FEW_SAMPLES`, the rows down to :data:`MIN_ROWS`, K down to 1, no IWAE bound, the
    reconstruction samples down to 1. No floor overrides the budget except the smallest
    evaluation (:data:`MIN_ROWS` rows, one reconstruction sample), which is then marked as not
    fitting.

    >>> p = choose_evaluation(0.01, 359, 45.0, max_samples=1000)
    >>> (p.iwae_samples, p.rows, p.recon_samples)
    (1000, 359, 16)
    >>> p = choose_evaluation(0.5, 359, 45.0, max_samples=1000)
    >>> (p.iwae_samples, p.rows, p.recon_samples)
    (71, 359, 16)
    >>> p = choose_evaluation(10.0, 359, 45.0, max_samples=1000)
    >>> (p.iwae_samples, p.rows, p.recon_samples, p.fits)
    (8, 59, 16, True)
    """
    if budget_seconds is None:
        return EvaluationPlan(max_samples, rows, 0.0, None, recon_samples)
    per_row = max(pass_seconds, 1e-9) / max(rows, 1)

    def passes(r: int) -> int:
        return int(budget_seconds / (per_row * r))

    def plan(r: int, k: int, rec: int, fits: bool = True) -> EvaluationPlan:
        cost = per_row * r * (k + rec + _OTHER_PASSES)
        per_call = max(1, int(budget_seconds / 8 / (per_row * r)))  # a call: at most 1/8 of it
        return EvaluationPlan(k, r, per_row * r, budget_seconds, rec, cost, fits, per_call)

    rec = recon_samples
    k_top, k_few = min(max_samples, PREFERRED_SAMPLES), min(max_samples, FEW_SAMPLES)
    k = min(max_samples, passes(rows) - rec - _OTHER_PASSES)
    if k >= k_top:
        return plan(rows, k, rec)
    # each tier: fewer rows at its K, down to its floor; then a smaller K at the floor
    floor = rows
    for k_tier, k_least, tier_floor in ((k_top, k_few, PREFERRED_ROWS), (k_few, 1, MIN_ROWS)):
        r = min(floor, int(budget_seconds / (per_row * (k_tier + rec + _OTHER_PASSES))))
        floor = min(tier_floor, rows)
        if r >= floor:
            return plan(r, k_tier, rec)
        k = min(k_tier, passes(floor) - rec - _OTHER_PASSES)
        if k >= k_least:
            return plan(floor, k, rec)
    min_rows = floor
    rec_fit = passes(min_rows) - _OTHER_PASSES
    if rec_fit >= 1:
        return plan(min_rows, 0, min(rec, rec_fit))
    return plan(min_rows, 0, 1, fits=False)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _log_likelihood(
    model: BatchedVAE, *, likelihood: Likelihood, kind: DecoderOutput, sigma: float
) -> Callable[[Tensor, Tensor], Tensor]:
    """log p(x|z) for every model at once: (z [c, S, N, k], x [N, D]) -> [c, S, N], nats."""

    def log_lik(z: Tensor, xx: Tensor) -> Tensor:
        c, S, N, k = z.shape
        flat = z.transpose(0, 1).reshape(S, c * N, k)
        out = model.decode(flat)
        nll = element_nll(
            out, xx.repeat(c, 1), likelihood=likelihood, decoder_output=kind, sigma=sigma, validate=False
        )
        return -nll.sum(-1).reshape(S, c, N).transpose(0, 1)

    return log_lik


@torch.no_grad()
def time_pass(
    model: BatchedVAE,
    x: Tensor,
    *,
    likelihood: Likelihood = "bernoulli",
    decoder_output: DecoderOutput | None = None,
    sigma: float = 1.0,
) -> float:
    """Seconds of one pass of the decoder and the likelihood over the rows ``x`` [N, D] for
    every model (one posterior sample per row), at the fastest thread count. A cheap pass is
    timed as the evaluation makes them, several samples per decoder call (a call has costs of
    its own); a slow one (such a call would take over 0.2 s) is timed once, one sample a row."""
    device = next(model.parameters()).device
    model.eval()
    xs = x.to(device)
    mu, _ = model.encode(xs)
    kind = decoder_output or default_decoder_output(likelihood)
    log_lik = _log_likelihood(model, likelihood=likelihood, kind=kind, sigma=sigma)

    def passes(c: int) -> Callable[[], None]:
        z = mu.unsqueeze(0).expand(c, -1, -1, -1)

        def run() -> None:
            log_lik(z, xs)
            _synchronize(device)  # a GPU runs asynchronously: let the call finish before timing

        return run

    start = time.perf_counter()
    passes(1)()  # the first call also pays one-off costs
    single = time.perf_counter() - start
    c = samples_per_call(mu.shape[0], xs.shape[0], xs.shape[1])
    if single * c > 0.2:
        return single
    if device.type == "cpu":
        _, seconds = choose_threads(passes(c))
    else:
        seconds = min(_timed(passes(c)) for _ in range(2))
    return max(seconds / c, 1e-9)


def _timed(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def plan_evaluation(
    model: BatchedVAE,
    x: Tensor,
    *,
    max_samples: int,
    max_rows: int = 1000,
    budget_seconds: float | None,
    likelihood: Likelihood = "bernoulli",
    decoder_output: DecoderOutput | None = None,
    sigma: float = 1.0,
) -> EvaluationPlan:
    """Choose K, the rows and the reconstruction samples for ``budget_seconds``
    (:func:`choose_evaluation`) from timed passes: first over :data:`PROBE_ROWS` rows; when that
    predicts a pass over all the rows to be a large part of the budget (a slow decoder), the
    prediction is used (it errs on the safe side: a call's fixed costs are counted once a row);
    else a pass over the rows is timed, and again over the rows chosen when they are fewer (a
    pass has costs that do not shrink with the rows), and the choice made again."""
    rows = min(max_rows, x.shape[0])
    if budget_seconds is None:
        return EvaluationPlan(max_samples, rows)

    def timed(n: int) -> float:
        return time_pass(model, x[:n], likelihood=likelihood, decoder_output=decoder_output, sigma=sigma)

    aim = PLAN_SHARE * budget_seconds  # the metrics beside the decoder passes cost a little too
    probe = min(rows, PROBE_ROWS)
    first = timed(probe)
    if first * rows / probe > budget_seconds / 20:  # a slow decoder: do not spend its budget timing it
        plan = choose_evaluation(first * rows / probe, rows, aim, max_samples=max_samples)
    else:
        plan = choose_evaluation(timed(rows), rows, aim, max_samples=max_samples)
        if plan.rows < rows:
            plan = choose_evaluation(timed(plan.rows), plan.rows, aim, max_samples=max_samples)
    return replace(plan, budget_seconds=budget_seconds)


@torch.no_grad()
def evaluate_models(
    model: BatchedVAE,
    x: Tensor,
    *,
    likelihood: Likelihood,
    decoder_output: DecoderOutput | None = None,
    sigma: float = 1.0,
    iwae_samples: int = 1000,
    max_points: int = 1000,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    recon_samples: int = RECON_SAMPLES,
    should_stop: Callable[[], bool] | None = None,
    budget_seconds: float | None = None,
    max_per_call: int | None = None,
    progress: bool | None = False,
) -> list[ModelMetrics]:
    """Metrics per model on data ``x`` [N, D] (at most ``max_points`` rows are used), with
    the models in ``eval()`` mode.

    In three stages: the posteriors (KL, active units, MI, aggregate KL), the reconstructions
    (reconstruction NLL, output diversity, latent usage), the IWAE bound with its Monte-Carlo
    standard error. ``should_stop`` is asked between stages and between IWAE chunks; what
    was not measured when it says stop is None. When it already says stop at the start
    (training was interrupted), only a quick evaluation runs: the posteriors and one-sample
    reconstructions, no IWAE. ``budget_seconds``: when the evaluation runs past it (the machine
    slowed down), the IWAE bound ends with the samples drawn so far (``iwae_samples`` of each
    :class:`ModelMetrics` says how many).

    Args:
        model: S trained models.
        x: held-out data [N, D].
        likelihood: the decoder's likelihood; decoder_output: what it emits (default: logits
            for Bernoulli kinds, mean for Gaussian, as the built-in models do).
        sigma: Gaussian decoder std.
        seed, seeds: model s draws its Monte-Carlo samples from a generator of its own, seeded
            by ``seed`` and ``seeds[s]`` (default 0 for every model), so that its metrics do
            not depend on the other models evaluated with it (:mod:`vaeloss.metrics.noise`).
        iwae_samples: K of the IWAE bound (0: none); recon_samples: samples of the
            reconstruction term.
        max_per_call: most posterior samples per decoder call (the plan's, for a slow decoder).
        progress: progress on stderr (see :func:`vaeloss.engine.progress.progress_mode`).

    Returns:
        One :class:`ModelMetrics` per model.
    """
    kind = decoder_output or default_decoder_output(likelihood)
    quick = should_stop is not None and should_stop()
    model.eval()
    device = next(model.parameters()).device
    x = x[:max_points].to(device)
    tuner = ThreadTuner.for_device(device)
    with tuner:
        mu_all, logvar_all = model.encode(x)  # [S, N, k]
        run = _Evaluation(
            model,
            x,
            mu_all,
            logvar_all,
            _tuned(tuner, _log_likelihood(model, likelihood=likelihood, kind=kind, sigma=sigma)),
            ModelNoise.seeded(model_seeds(mu_all.shape[0], seeds), base=seed, device=device),
            min(samples_per_call(mu_all.shape[0], mu_all.shape[1], x.shape[1]), max_per_call or 100),
            quick,
            should_stop,
            budget_seconds,
        )
        posterior = [
            summarize(mu_all[s], logvar_all[s], generator=run.noise.one(s)) for s in range(mu_all.shape[0])
        ]
        outputs = (
            None if run.stop() else run.outputs(1 if quick else max(1, recon_samples), kind, likelihood, seed)
        )
        bound = None if quick or iwae_samples <= 0 or run.stop() else run.bound(iwae_samples, progress)
    return [_metrics(s, p, outputs, bound) for s, p in enumerate(posterior)]


def _tuned(
    tuner: ThreadTuner, log_lik: Callable[[Tensor, Tensor], Tensor]
) -> Callable[[Tensor, Tensor], Tensor]:
    """The log-likelihood, each call a step of the thread tuner."""

    def call(z: Tensor, xx: Tensor) -> Tensor:
        with tuner.step():
            return log_lik(z, xx)

    return call


@dataclass
class _Outputs:
    """Per model, the reconstruction NLL, output diversity and latent usage."""

    recon: list[float]
    diversity: list[float]
    usage: list[float]


@dataclass
class _Bound:
    """Per model, the IWAE bound and its standard error, and the samples drawn."""

    nll: list[float]
    se: list[float]
    samples: int


def _metrics(s: int, p: CollapseSummary, outputs: _Outputs | None, bound: _Bound | None) -> ModelMetrics:
    r = None if outputs is None else outputs.recon[s]
    return ModelMetrics(
        **vars(p),
        recon=r,
        elbo=None if r is None else -(r + p.kl),
        iwae_nll=None if bound is None else bound.nll[s],
        iwae_se=None if bound is None else bound.se[s],
        output_diversity=None if outputs is None else outputs.diversity[s],
        latent_usage=None if outputs is None else outputs.usage[s],
        iwae_samples=None if bound is None else bound.samples,
    )


@dataclass
class _Evaluation:
    """One evaluation's tensors and limits: the stages that need the decoder."""

    model: BatchedVAE
    x: Tensor
    mu: Tensor
    logvar: Tensor
    log_lik: Callable[[Tensor, Tensor], Tensor]
    noise: ModelNoise
    chunk: int
    quick: bool
    should_stop: Callable[[], bool] | None
    budget_seconds: float | None
    started: float = field(default_factory=time.perf_counter)

    def stop(self) -> bool:
        return not self.quick and self.should_stop is not None and self.should_stop()

    def enough(self) -> bool:
        return self.budget_seconds is not None and time.perf_counter() - self.started > self.budget_seconds

    def outputs(self, n_rec: int, kind: DecoderOutput, likelihood: Likelihood, seed: int) -> _Outputs:
        """The reconstruction NLL from ``n_rec`` posterior samples, output diversity and latent
        usage, per model."""
        S, N, k = self.mu.shape
        device, dtype = self.mu.device, self.mu.dtype
        recon_sum = torch.zeros(S, device=device, dtype=dtype)
        for start in range(0, n_rec, self.chunk):
            c = min(self.chunk, n_rec - start)
            eps = self.noise.draw(c, (S, N, k), dtype=dtype)
            recon_sum -= self.log_lik(reparameterise(self.mu, self.logvar, eps), self.x).sum(dim=(0, 2))
        means = decoder_mean(self.model.decode(self.mu), kind, likelihood)  # [S, N, D]
        prior = self.noise.draw(1, self.mu.shape, dtype=dtype)[0]
        prior_means = decoder_mean(self.model.decode(prior), kind, likelihood)
        x_cpu = self.x.cpu()
        diversity = [
            output_diversity(means[s].cpu(), x_cpu, generator=torch.Generator().manual_seed(seed))
            for s in range(S)
        ]
        usage = [latent_usage_from(means[s], prior_means[s], self.x) for s in range(S)]
        return _Outputs((recon_sum / (n_rec * N)).tolist(), diversity, usage)

    def bound(self, samples: int, progress: bool | None) -> _Bound | None:
        """The IWAE bound of every model (None when a stop request ended it)."""
        bar = Progress(samples, what="IWAE", unit="sample", mode=progress_mode(progress))
        try:
            found = _iwae_chunked(
                self.x,
                self.mu,
                self.logvar,
                self.log_lik,
                samples,
                self.chunk,
                self.noise,
                self.stop,
                self.enough,
                bar.update,
            )
        finally:
            bar.close()
        if found is None:
            return None
        nll, se, drawn = found
        return _Bound(nll.tolist(), se.tolist(), drawn)


def _iwae_chunked(
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    log_lik: Callable[[Tensor, Tensor], Tensor],
    samples: int,
    chunk: int,
    g: ModelNoise,
    stop: Callable[[], bool],
    enough: Callable[[], bool],
    advance: Callable[..., Any],
) -> tuple[Tensor, Tensor, int] | None:
    """The IWAE bound (:func:`vaeloss.metrics.iwae_bound`) per model [S], mean over rows, its
    Monte-Carlo standard error [S] (rows are independent, so the mean over N rows has standard
    error sqrt(sum of the rows' variances) / N) and the samples drawn. ``stop`` is asked
    between chunks (None when stopped), ``enough`` after them (the budget ran out: the samples
    so far are used); ``advance`` gets the samples done (a progress bar)."""

    found = iwae_bound(
        x,
        mu,
        logvar,
        log_lik,
        samples=samples,
        chunk=chunk,
        generator=g,
        stop=stop,
        enough=enough,
        advance=advance,
    )
    if found is None:
        return None
    nll, var = found.nll, found.variance  # [S, N]
    return nll.mean(-1), var.sum(-1).sqrt() / nll.shape[-1], found.samples
