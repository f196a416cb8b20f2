"""Run an audit as a short sequence of named steps.

:func:`plan_audit` validates every input and resolves what will be done (the objective and
its units, the data, the model, the sweep) without training anything; :func:`execute` then
trains the sweep, evaluates it, judges each model and recommends a beta.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pandas as pd

from vaeloss.audit import defaults
from vaeloss.audit.calibrate import calibrate_sigma
from vaeloss.audit.cost import CostEstimate, estimate_training
from vaeloss.audit.recommend import best_iwae, by_calibration, predicted_collapse
from vaeloss.audit.result import (
    AuditObjective,
    AuditResult,
    AuditSetup,
    AuditTimings,
    Phase,
    Recommendation,
    SweepRow,
)
from vaeloss.audit.stop import StopRequest
from vaeloss.audit.verdict import classify, diverged, too_early, too_early_reason
from vaeloss.engine.build import BUILT_IN, UserModel, build_model
from vaeloss.engine.data import Binarization, Dataset, load_dataset, prepare_for_likelihood
from vaeloss.engine.decoder_output import DecoderKind, decoder_output_for
from vaeloss.engine.evaluate import MIN_ROWS, EvaluationPlan, ModelMetrics, evaluate_models, plan_evaluation
from vaeloss.engine.interface import user_line
from vaeloss.engine.models import BatchedVAE, DataScaling
from vaeloss.engine.stacks import StackChoice
from vaeloss.engine.trainer import TrainConfig, TrainResult, resolve_device, train
from vaeloss.errors import DataError, InvalidArgumentError, LossCheckError, TrainingError, VaelossError
from vaeloss.objective.likelihoods import DecoderOutput, Likelihood, default_decoder_output
from vaeloss.objective.presets import get_convention
from vaeloss.threads import single_threaded
from vaeloss.validation import check_nonnegative, check_positive, check_positive_int

__all__ = ["AUTO_GRID", "AuditOptions", "AuditPlan", "AuditRun", "execute", "plan_audit", "run_audit"]

AUTO_GRID = (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)


@dataclass
class AuditOptions:
    """Options of ``vaeloss audit`` (see ``vaeloss audit --help``). ``kl_weight`` is the
    ``--beta`` of the command: a KL weight in the audited loss's own units."""

    loss: str | None = None
    convention: str | None = None
    kl_weight: float | None = None
    args: tuple[tuple[str, str], ...] = ()
    data: str = "digits"
    data_dir: str | None = None
    download: bool = False
    binarize: Binarization = "none"
    rescale: bool = False
    model: str = "mlp"
    init: tuple[tuple[str, str], ...] = ()
    model_api: str | None = None
    decoder_output: DecoderKind | None = None
    hidden: tuple[int, ...] | None = None
    latent_dim: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    time_budget: float = defaults.TIME_BUDGET
    eval_budget: float | None = defaults.EVAL_BUDGET
    sweep: str = "auto"
    device: str = "auto"
    seed: int = 0
    iwae_samples: int = 1000
    progress: bool | None = None
    calibrate: bool = True


@dataclass
class AuditPlan:
    """Everything decided before training: objective, setup, data, model and sweep."""

    objective: AuditObjective
    setup: AuditSetup
    data: Dataset
    hidden: tuple[int, ...]
    lr: float
    elbo_betas: list[float]
    current: int
    options: AuditOptions
    model: str | UserModel = "mlp"
    scaling: DataScaling | None = None
    stacking: StackChoice = StackChoice("batched")
    seconds_planning: float = 0.0

    def build(self, n_models: int) -> BatchedVAE:
        """The planned model, ``n_models`` copies of it (all from the audit's seed)."""
        s = self.setup
        model, _ = build_model(
            self.model,
            data_dim=s.data_dim,
            shape=self.data.shape,
            hidden=self.hidden,
            latent_dim=s.latent_dim,
            n_models=n_models,
            seeds=[s.seed] * n_models,
            scaling=self.scaling,
            sample=self.data.x_train[:8],
        )
        return model

    @property
    def kl_weights(self) -> list[float]:
        return [self.objective.kl_weight_for(b, self.setup.sizes) for b in self.elbo_betas]


@dataclass
class AuditRun:
    """An audit's result and what its figures are drawn from."""

    result: AuditResult
    data: Dataset
    model: BatchedVAE
    history: pd.DataFrame


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


def resolve_objective(opts: AuditOptions, sizes: dict[str, int]) -> AuditObjective:
    """Step 1: the loss audited (a user's file read by ``vaeloss check``, a preset, or the
    per-sample ELBO) and the user's KL weight in its own units."""
    if opts.loss and opts.convention:
        raise InvalidArgumentError(
            f"Expected --loss or --convention, not both, but got loss={opts.loss!r}, "
            f"convention={opts.convention!r}. Try one of them."
        )
    if opts.loss:
        from vaeloss.check.runner import check_loss

        # flat [B, D] inputs first; check falls back to [B, 1, H, W] for square D by itself
        try:
            report = check_loss(
                opts.loss,
                batch_size=sizes["B"],
                data_dim=sizes["D"],
                latent_dim=sizes["k"],
                args=dict(opts.args),
            )
        except LossCheckError as exc:
            if "Try " in str(exc):
                raise
            raise LossCheckError(
                f"{exc}. Try --convention NAME for the convention your loss follows (vaeloss explain "
                f"lists them), or --loss with a wrapper loss_function(recon_x, x, mu, logvar) that calls it."
            ) from None
        conv = report.objective
        if conv is None:
            codes = ", ".join(f.code for f in report.findings if f.severity != "info")
            raise LossCheckError(
                f"Expected a loss of the form a*NLL + b*KL that check can read, but "
                f"{opts.loss} is not ({codes}). Try 'vaeloss check {opts.loss}' for details, "
                f"or --convention NAME."
            )
        if conv.kl_base.coef <= 0:
            raise LossCheckError(
                f"Expected a positive KL term but {opts.loss} has factor "
                f"{conv.kl_base.formula()}. Try 'vaeloss check {opts.loss}'."
            )
        weight = 1.0 if opts.kl_weight is None else opts.kl_weight
        path, _, name = opts.loss.rpartition(":")
        where = path if path and name.isidentifier() else opts.loss
        return AuditObjective(conv, f"{report.function} in {where}", weight)
    if opts.convention:
        conv = get_convention(opts.convention)
        weight = float(conv.kl_weight) if opts.kl_weight is None else opts.kl_weight
        return AuditObjective(conv.with_kl_weight(1), f"the {conv.name} convention", weight)
    conv = get_convention("per_sample_mean")
    return AuditObjective(conv, "the per-sample ELBO", 1.0 if opts.kl_weight is None else opts.kl_weight)


def plan_sweep(objective: AuditObjective, sweep: str, sizes: dict[str, int]) -> tuple[list[float], int]:
    """Step 2: the ELBO betas to train (the user's among them) and the index of the user's."""
    own_sweep = _sweep_values(sweep)
    current = objective.elbo_beta(objective.kl_weight, sizes)
    if own_sweep is not None:
        betas = sorted({current, *(objective.elbo_beta(w, sizes) for w in own_sweep)})
    elif sweep == "none":
        betas = [current]
    else:
        grid = [b for b in AUTO_GRID if abs(math.log(b) - math.log(current or 1e-12)) > 0.05]
        betas = sorted({current, *grid})
    return betas, betas.index(current)


def check_data_limits(ds: Dataset, *, batch_size: int) -> None:
    """Raise unless the data has enough rows for the batch size and the held-out metrics."""
    n_train, n_val = ds.x_train.shape[0], ds.x_val.shape[0]
    if n_val < MIN_ROWS:
        total = n_train + n_val
        raise DataError(
            f"Expected at least {MIN_ROWS} held-out rows for the collapse metrics but "
            f"data={ds.name!r} has {total} rows, so {n_val} held out (20%): active units are a "
            f"variance over rows, the mutual information estimate cannot exceed log N, and output "
            f"diversity compares pairs of rows. Try a data set with at least "
            f"{MIN_ROWS * 5} rows."
        )
    if batch_size > n_train:
        raise InvalidArgumentError(
            f"Expected --batch-size at most the {n_train} training rows of data={ds.name!r} but got "
            f"batch_size={batch_size} (the effective beta would use a batch size no step has). "
            f"Try --batch-size {min(64, n_train)}."
        )


def check_latent_dim(k: int, data_dim: int, *, user_model: bool) -> None:
    """Raise unless the latent dim is at most the data dim (no more dims can carry information)."""
    if k > data_dim:
        where, fix = (
            ("your model's latent dim", f"a model with a latent dim of at most {min(8, data_dim)}")
            if user_model
            else ("--latent-dim", f"--latent-dim {min(8, data_dim)}")
        )
        raise InvalidArgumentError(
            f"Expected {where} at most the data dimension D={data_dim} (more latent dims than "
            f"data dims cannot all carry information) but got latent_dim={k}. Try {fix}."
        )


def _check_model_options(opts: AuditOptions) -> bool:
    """Whether the model is the user's; raise on options that do not apply to it."""
    user = opts.model not in BUILT_IN
    if user and (opts.latent_dim is not None or opts.hidden is not None):
        given = "--latent-dim" if opts.latent_dim is not None else "--hidden"
        raise InvalidArgumentError(
            f"Expected no {given} with your own model (--model {opts.model}): the model decides its "
            f"latent dim and layers. Try --init NAME=VALUE to pass them to its constructor, e.g. "
            f"--init latent_dim=16."
        )
    if not user and (opts.init or opts.model_api or opts.decoder_output):
        given = "--init" if opts.init else "--model-api" if opts.model_api else "--decoder-output"
        raise InvalidArgumentError(
            f"Expected {given} only with your own model (--model FILE:Class) but got "
            f"model={opts.model!r}. Try --model my_vae.py:VAE {given} ..."
        )
    return user


def _decoder_output(
    plan_model: str | UserModel, objective: AuditObjective, ds: Dataset
) -> tuple[DecoderOutput, str]:
    """What the likelihood reads the model's outputs as, and why (for the report)."""
    likelihood = objective.convention.likelihood
    if not isinstance(plan_model, UserModel):
        kind = default_decoder_output(likelihood)
        return kind, f"the built-in decoder emits {kind}"
    lo = min(float(ds.x_train.min()), float(ds.x_val.min()))
    hi = max(float(ds.x_train.max()), float(ds.x_val.max()))
    sem = plan_model.semantics
    kind = decoder_output_for(
        sem, likelihood, data_range=(lo, hi), loss_reads=objective.convention.decoder_output
    )
    what = {"probabilities": "probabilities", "logits": "logits", "mean": "a mean"}[kind]
    if kind == "logits" and likelihood == "gaussian":
        what = "logits (the Gaussian mean is their sigmoid)"
    rng = f" in [{sem.low:g}, {sem.high:g}]" if kind == "mean" and sem.squashed else ""
    return kind, f"read as {what}{rng}: {sem.how}"


def _shape_notes(model: str | UserModel) -> tuple[str, ...]:
    """A note when a user's decoder returns rows of another shape than its inputs."""
    note = model.iface.output_mismatch() if isinstance(model, UserModel) else None
    return () if note is None else (note,)


def _loss_vs_model(objective: AuditObjective, kind: DecoderOutput, model: str | UserModel) -> list[str]:
    """A note when the audited loss reads the decoder's output differently from the model."""
    wants = objective.convention.decoder_output
    if not isinstance(model, UserModel) or wants is None or wants == kind:
        return []
    if objective.convention.likelihood == "gaussian":
        if wants == "logits" and model.semantics.last_op in ("sigmoid", "hardsigmoid"):
            return [
                "your loss applies a sigmoid to the decoder's output before the squared error but "
                "the model's decoder already ends in a sigmoid: in your training the sigmoid is "
                "applied twice, so reconstructions stay within [0.5, 0.73]. The audit reads the output "
                "as the mean; drop one of the two sigmoids."
            ]
        return []
    if wants == "logits" and kind == "probabilities":
        return [
            "your loss reads the decoder's output as logits (e.g. binary_cross_entropy_with_logits) "
            "but the model's decoder already ends in a sigmoid: in your training the sigmoid is "
            "applied twice, so reconstructions cannot go below 0.27 or above 0.73. The audit reads "
            "the output as probabilities; drop the sigmoid or use binary_cross_entropy."
        ]
    if wants == "probabilities" and kind == "logits":
        return [
            "your loss reads the decoder's output as probabilities (binary_cross_entropy) but the "
            "decoder's output is not squashed to [0, 1]: add a sigmoid to the model or use "
            "binary_cross_entropy_with_logits. The audit reads the output as logits."
        ]
    return []


def plan_audit(opts: AuditOptions) -> AuditPlan:
    """Validate every input and decide what the audit does. Trains nothing; raises a
    :class:`~vaeloss.errors.VaelossError` on bad input. Runs on one thread (small work)."""
    started = time.perf_counter()
    with single_threaded():
        plan = _plan(opts)
    plan.seconds_planning = time.perf_counter() - started
    return plan


def _plan(opts: AuditOptions) -> AuditPlan:
    if opts.kl_weight is not None:
        check_nonnegative("beta", opts.kl_weight)
    _sweep_values(opts.sweep)
    device = resolve_device(opts.device)
    user = _check_model_options(opts)
    if opts.latent_dim is not None:
        check_positive_int("latent_dim", opts.latent_dim, example=8)
    B = check_positive_int(
        "batch_size", defaults.BATCH_SIZE if opts.batch_size is None else opts.batch_size, example=64
    )
    epochs = check_positive_int(
        "epochs", defaults.MAX_EPOCHS if opts.epochs is None else opts.epochs, example=200
    )
    lr = check_positive("lr", defaults.LEARNING_RATE if opts.lr is None else opts.lr)
    check_positive("time_budget", opts.time_budget)
    if opts.eval_budget is not None:
        check_positive("eval_budget", opts.eval_budget)
    check_positive_int("iwae_samples", opts.iwae_samples, example=1000)
    ds = load_dataset(
        opts.data,
        data_dir=opts.data_dir,
        download=opts.download,
        likelihood=None,
        rescale=opts.rescale,
        seed=opts.seed,
    )
    check_data_limits(ds, batch_size=B)
    hidden = tuple(opts.hidden) if opts.hidden is not None else defaults.hidden_for(ds.dim)
    model: str | UserModel = opts.model
    if user:
        from vaeloss.audit.usermodel import load_user_model

        model = load_user_model(
            opts.model,
            init=opts.init,
            model_api=opts.model_api,
            decoder_output=opts.decoder_output,
            x=ds.x_train[:8],
            data_shape=ds.shape,
        )
        k = model.latent_dim
    else:
        # the default latent dim never exceeds the data dim; one asked for is checked below
        k = min(defaults.latent_dim_for(ds.dim), ds.dim) if opts.latent_dim is None else opts.latent_dim
    check_latent_dim(k, ds.dim, user_model=user)
    sizes = {"B": B, "D": ds.dim, "k": k}
    objective = resolve_objective(opts, sizes)
    likelihood = objective.convention.likelihood
    ds = prepare_for_likelihood(ds, likelihood, binarization=opts.binarize, seed=opts.seed)
    decoder_output, how = _decoder_output(model, objective, ds)
    scaling = (
        None
        if user
        else DataScaling.from_data(
            ds.x_train, logits=decoder_output == "logits", multinomial=likelihood == "multinomial"
        )
    )
    _, stacking = build_model(
        model,
        data_dim=ds.dim,
        shape=ds.shape,
        hidden=hidden,
        latent_dim=k,
        n_models=1,
        scaling=scaling,
        sample=ds.x_train[:8],
    )
    betas, current = plan_sweep(objective, opts.sweep, sizes)
    setup = AuditSetup(
        data=opts.data,
        model=opts.model,
        likelihood=likelihood,
        decoder_output=decoder_output,
        latent_dim=k,
        batch_size=B,
        data_dim=ds.dim,
        epochs=epochs,
        seed=opts.seed,
        device=str(device),
        lr=lr,
        time_budget=opts.time_budget,
        sweep_time_budget=opts.time_budget
        * (defaults.SWEEP_SHARE_WHEN_CALIBRATING if _calibrates(likelihood, opts) else 1.0),
        decoder_how=how,
        model_described=model.iface.describe() if isinstance(model, UserModel) else None,
        stacking=stacking.describe() if model != "mlp" and model != "linear" else None,
        notes=tuple(_loss_vs_model(objective, decoder_output, model)) + _shape_notes(model),
    )
    return AuditPlan(objective, setup, ds, hidden, lr, betas, current, opts, model, scaling, stacking)


def _train_config(plan: AuditPlan, *, max_seconds: float) -> TrainConfig:
    s, S = plan.setup, len(plan.elbo_betas)
    return TrainConfig(
        betas=plan.elbo_betas,
        likelihood=s.likelihood,
        decoder_output=s.decoder_output,
        loss_scale=plan.objective.convention.gradient_scale(**s.sizes),
        epochs=s.epochs,
        batch_size=s.batch_size,
        lr=plan.lr,
        until="converged",
        max_seconds=max_seconds,
        lr_warmup_steps=defaults.LR_WARMUP_STEPS,
        seed=s.seed,
        model_seeds=[s.seed] * S,
        device=s.device,
        progress=plan.options.progress,
    )


def _calibrates(likelihood: Likelihood, opts: AuditOptions) -> bool:
    """Whether the audit calibrates the decoder variance after the sweep (squared-error losses)."""
    return likelihood == "gaussian" and opts.calibrate


def estimate_cost(plan: AuditPlan, model: BatchedVAE) -> CostEstimate:
    """Step 3: time one training step and one evaluation pass of the sweep's models before
    training, and plan the evaluation for its budget (:mod:`vaeloss.audit.cost`)."""
    s = plan.setup
    cfg = _train_config(plan, max_seconds=s.sweep_time_budget)
    model.to(resolve_device(s.device))
    step, steps, epoch = estimate_training(model, plan.data, cfg)
    evaluation = plan_evaluation(
        model,
        plan.data.x_val,
        max_samples=plan.options.iwae_samples,
        budget_seconds=plan.options.eval_budget,
        likelihood=s.likelihood,
        decoder_output=s.decoder_output,
    )
    return CostEstimate(
        step, steps, epoch, s.sweep_time_budget, evaluation, s.sweep_time_budget / s.time_budget
    )


def _after_setup(plan: AuditPlan, seconds: float) -> AuditPlan:
    """The plan with the sweep's time budget: its share of what ``--time-budget`` leaves after
    ``seconds`` of setup (the budget covers the setup, the sweep and the calibration)."""
    share = defaults.SWEEP_SHARE_WHEN_CALIBRATING if _calibrates(plan.setup.likelihood, plan.options) else 1.0
    budget = max(1e-3, share * (plan.setup.time_budget - seconds))
    return replace(plan, setup=replace(plan.setup, sweep_time_budget=budget))


def train_sweep(plan: AuditPlan, model: BatchedVAE, should_stop: Callable[[], bool]) -> TrainResult:
    """Step 4: train every beta of the sweep at once, as one batched model, each to
    convergence (within the epoch budget and its share of the time budget)."""
    cfg = _train_config(plan, max_seconds=plan.setup.sweep_time_budget)
    return train(model, plan.data, cfg, should_stop=should_stop)


def evaluate_sweep(
    plan: AuditPlan, trained: TrainResult, how: EvaluationPlan, should_stop: Callable[[], bool]
) -> list[ModelMetrics]:
    """Step 5: the collapse metrics of every model on held-out data, with the K, rows and
    reconstruction samples planned for the evaluation budget (the IWAE bound ends early if the
    machine slows down and the budget runs out)."""
    return evaluate_models(
        trained.model,
        plan.data.x_val,
        likelihood=plan.setup.likelihood,
        decoder_output=plan.setup.decoder_output,
        iwae_samples=how.iwae_samples,
        recon_samples=how.recon_samples,
        max_points=how.rows,
        seed=plan.setup.seed,
        should_stop=should_stop,
        budget_seconds=how.budget_seconds,
        max_per_call=how.samples_per_call,
        progress=trained.config.progress,
    )


def judge(plan: AuditPlan, trained: TrainResult, metrics: list[ModelMetrics]) -> list[SweepRow]:
    """Step 6: one row per model with its verdict (diverged models keep no metrics; models
    stopped too early are shown but not judged).

    Raises:
        TrainingError: every model diverged (nothing was measured).
    """
    found = [d for d in trained.stopped if d is not None]
    if len(found) == len(trained.stopped):
        first = min(found, key=lambda d: d.step)
        raise TrainingError(
            f"Expected training to stay finite but the loss of every model of the sweep went "
            f"non-finite (first: the {first.term} term at step {first.step}, epoch "
            f"{first.epoch}, lr={plan.lr:g}). Try a lower learning rate such as --lr {plan.lr / 10:g}."
        )
    rows = []
    k = plan.setup.latent_dim
    for beta, weight, m, stopped, status in zip(
        plan.elbo_betas, plan.kl_weights, metrics, trained.stopped, trained.status
    ):
        if stopped is not None:
            rows.append(SweepRow(weight, beta, None, diverged(stopped), stopped, status))
            continue
        early = too_early_reason(status)
        verdict = too_early(early, m, k) if early is not None else classify(m, k)
        rows.append(SweepRow(weight, beta, m, verdict, None, status))
    return rows


def recommend(
    plan: AuditPlan,
    rows: list[SweepRow],
    should_stop: Callable[[], bool],
    *,
    iwae_samples: int,
    seconds_used: float = 0.0,
) -> Recommendation | None:
    """Step 7: the recommended beta (calibrated decoder variance for squared-error losses,
    else the best held-out likelihood). None when there is nothing to recommend from: the
    calibration was cut short or stopped too early to tell, or no model that can be judged
    has a held-out likelihood."""
    sizes = plan.setup.sizes
    if _calibrates(plan.setup.likelihood, plan.options):
        if should_stop():
            return None
        left = plan.setup.time_budget - seconds_used
        calibrated = calibrate_sigma(
            plan.data,
            plan.build(1),
            _train_config(plan, max_seconds=max(left, 1e-3)),
            should_stop=should_stop,
        )
        if calibrated is None or calibrated.too_early is not None:
            return None
        return by_calibration(calibrated, rows, plan.objective, sizes)
    return best_iwae(rows, plan.objective, sizes, iwae_samples)


@contextmanager
def _running_user_code(plan: AuditPlan, phase: str) -> Iterator[None]:
    """Turn an exception raised inside a user's model into a clear error naming the model,
    the phase and the line of the model's file (not "a bug in vaeloss")."""
    try:
        yield
    except (VaelossError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if not isinstance(plan.model, UserModel):
            raise
        spec = plan.model.spec
        where = user_line(exc)
        first = str(exc).splitlines()[0] if str(exc) else ""
        hint = (
            "Try --device cpu, or create tensors in the model with the device of its inputs "
            "(torch.randn_like(std), not torch.randn(std.size()))."
            if plan.setup.device.startswith("cuda")
            else "Try running the model on a batch of the data yourself; the report's setup shows "
            "how the audit calls it (encode/decode, input shape)."
        )
        raise TrainingError(
            f"Expected your model {spec} to run during the audit's {phase} but it raised "
            f"{type(exc).__name__}: {first}{where}. {hint}"
        ) from None


def execute(
    plan: AuditPlan,
    *,
    stop: StopRequest | None = None,
    notify: Callable[[str], None] | None = None,
    started: float | None = None,
) -> AuditRun:
    """Build the sweep's models, time them, train, evaluate, judge and recommend, as planned.

    ``stop`` is asked throughout (the CLI's signal handlers set it): when it says stop, the
    phase running ends early, the later ones do only their cheap part, and the result is
    marked partial with the phase that was cut short. ``notify`` is told, before training,
    what the user should know about the budgets (the CLI prints it). ``started`` is the
    ``time.perf_counter()`` at which the audit's setup began (default: the planning's start).
    """
    stop = stop or StopRequest()
    t0 = started if started is not None else time.perf_counter() - plan.seconds_planning
    timings = AuditTimings()
    with _running_user_code(plan, "setup"):
        model = plan.build(len(plan.elbo_betas))
        cost = estimate_cost(_after_setup(plan, time.perf_counter() - t0), model)
    timings.setup = time.perf_counter() - t0
    plan = _after_setup(plan, timings.setup)
    cost = replace(cost, training_budget=plan.setup.sweep_time_budget)
    for notice in cost.notices(models=len(plan.elbo_betas)):
        if notify is not None:
            notify(notice)
    with _running_user_code(plan, "training"):
        trained = train_sweep(plan, model, stop)
    timings.training = trained.seconds
    phase: Phase | None = "training" if trained.interrupted else None
    begun = time.perf_counter()
    with _running_user_code(plan, "evaluation"):
        metrics = evaluate_sweep(plan, trained, cost.evaluation, stop)
    timings.evaluation = time.perf_counter() - begun
    if phase is None and stop():
        phase = "evaluation"
    rows = judge(plan, trained, metrics)
    begun = time.perf_counter()
    with _running_user_code(plan, "calibration"):
        rec = recommend(
            plan,
            rows,
            stop,
            iwae_samples=cost.evaluation.iwae_samples,
            seconds_used=timings.setup + trained.seconds,
        )
    timings.calibration = (
        time.perf_counter() - begun if _calibrates(plan.setup.likelihood, plan.options) else 0.0
    )
    if phase is None and stop():
        phase = "recommendation"
    result = AuditResult(
        objective=plan.objective,
        setup=plan.setup,
        sweep=rows,
        current=plan.current,
        verdict=rows[plan.current].verdict,
        recommendation=rec,
        collapse_points=None
        if rec is None
        else predicted_collapse(rec, rows, plan.objective, plan.setup.sizes),
        steps=trained.steps,
        epochs_run=trained.epochs_run,
        seconds_training=trained.seconds,
        seconds_evaluation=timings.evaluation,
        evaluation=cost.evaluation,
        interrupted_in=phase,
        signal=stop.reason if phase is not None else None,
        timings=timings,
        cost=cost,
    )
    return AuditRun(result, plan.data, trained.model, trained.history)


def run_audit(opts: AuditOptions) -> AuditRun:
    """:func:`plan_audit` then :func:`execute`."""
    return execute(plan_audit(opts))
