"""Run an audit as planned (:mod:`vaeloss.audit.plan`): the sweep's models are split into
groups, each group built, timed, trained and evaluated where an :class:`Executor` runs it (this
process: :class:`LocalExecutor`, one group), then every model is judged, a beta recommended,
and the result assembled.

Steps, each a short function: :func:`estimate_cost` (one step and one evaluation pass timed
before training), :func:`train_group`, :func:`evaluate_group`, :func:`judge`, :func:`recommend`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Protocol

import pandas as pd

from vaeloss.audit import defaults
from vaeloss.audit.calibrate import calibrate_sigma
from vaeloss.audit.cost import CostEstimate, estimate_training
from vaeloss.audit.groups import (
    HERE,
    ElsewhereGroup,
    GroupOutcome,
    Outcome,
    SweepGroup,
    SweepOutcome,
    groups_of,
    join,
)
from vaeloss.audit.plan import AuditPlan, SweepMember
from vaeloss.audit.recommend import best_iwae, best_mean_iwae, by_calibration, predicted_collapse
from vaeloss.audit.result import AuditResult, AuditTimings, Phase, Recommendation, SweepRow
from vaeloss.audit.stop import StopRequest
from vaeloss.audit.verdict import classify, diverged, elsewhere, lost, too_early, too_early_reason
from vaeloss.engine.data import Dataset
from vaeloss.engine.evaluate import EvaluationPlan, ModelMetrics, evaluate_models, plan_evaluation
from vaeloss.engine.interface import user_line
from vaeloss.engine.models import BatchedVAE
from vaeloss.engine.trainer import TrainConfig, TrainResult, resolve_device, train
from vaeloss.errors import TrainingError, VaelossError, first_line

__all__ = [
    "AuditRun",
    "Executor",
    "GroupOutcome",
    "LocalExecutor",
    "SweepGroup",
    "estimate_cost",
    "evaluate_group",
    "conclude",
    "execute",
    "judge",
    "recommend",
    "run_group",
    "train_group",
]


@dataclass
class AuditRun:
    """An audit's result and what its figures are drawn from."""

    result: AuditResult
    data: Dataset
    model: BatchedVAE | None  # None: every group was lost
    history: pd.DataFrame


class Executor(Protocol):
    """Runs the groups of a sweep and returns their outcomes (or why a group was lost), in the
    groups' order; :meth:`split` says how it splits the sweep into groups."""

    def split(self, plan: AuditPlan) -> list[SweepGroup]: ...

    def run(
        self,
        plan: AuditPlan,
        groups: Sequence[SweepGroup],
        *,
        stop: StopRequest,
        notify: Callable[[str], None],
        started: float,
    ) -> list[Outcome]: ...


def _train_config(plan: AuditPlan, group: SweepGroup, *, max_seconds: float) -> TrainConfig:
    s = plan.setup
    return TrainConfig(
        betas=group.betas,
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
        model_seeds=[m.seed(s.seed) for m in group.members],
        device=s.device,
        progress=plan.evaluation.progress,
    )


def build_group(plan: AuditPlan, group: SweepGroup) -> BatchedVAE:
    """The group's models, each seeded by its place in the whole sweep, on the plan's device."""
    s = plan.setup
    model, _ = plan.source.build(
        len(group.members), [m.seed(s.seed) for m in group.members], plan.data.x_train[:8]
    )
    return model.to(resolve_device(s.device))


def estimate_cost(plan: AuditPlan, group: SweepGroup, model: BatchedVAE) -> CostEstimate:
    """Time one training step and one evaluation pass of the group's models before training,
    and plan the evaluation for its budget (:mod:`vaeloss.audit.cost`)."""
    s = plan.setup
    step, steps, epoch = estimate_training(
        model, plan.data, _train_config(plan, group, max_seconds=s.sweep_time_budget)
    )
    evaluation = plan_evaluation(
        model,
        plan.data.x_val,
        max_samples=plan.evaluation.iwae_samples,
        budget_seconds=plan.evaluation.budget,
        likelihood=s.likelihood,
        decoder_output=s.decoder_output,
    )
    return CostEstimate(
        step, steps, epoch, s.sweep_time_budget, evaluation, s.sweep_time_budget / s.time_budget
    )


def after_setup(plan: AuditPlan, seconds: float) -> AuditPlan:
    """The plan with the sweep's time budget: its share of what ``--time-budget`` leaves after
    ``seconds`` of setup (the budget covers the setup, the sweep and the calibration)."""
    share = defaults.SWEEP_SHARE_WHEN_CALIBRATING if plan.calibrates else 1.0
    budget = max(1e-3, share * (plan.setup.time_budget - seconds))
    return replace(plan, setup=replace(plan.setup, sweep_time_budget=budget))


def train_group(plan: AuditPlan, group: SweepGroup, model: BatchedVAE, stop: StopRequest) -> TrainResult:
    """Train the group's betas at once, as one batched model, each to convergence (within the
    epoch budget and the sweep's share of the time budget)."""
    return train(
        model,
        plan.data,
        _train_config(plan, group, max_seconds=plan.setup.sweep_time_budget),
        should_stop=stop,
    )


def evaluate_group(
    plan: AuditPlan, trained: TrainResult, how: EvaluationPlan, stop: StopRequest
) -> list[ModelMetrics]:
    """The collapse metrics of every model on held-out data, with the K, rows and
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
        seeds=trained.config.model_seeds,
        should_stop=stop,
        budget_seconds=how.budget_seconds,
        max_per_call=how.samples_per_call,
        progress=trained.config.progress,
    )


def run_group(
    plan: AuditPlan,
    group: SweepGroup,
    *,
    stop: StopRequest,
    notify: Callable[[str], None],
    started: float,
    where: str = HERE,
) -> GroupOutcome:
    """Build, time, train and evaluate one group, in this process. ``started`` is the
    ``time.perf_counter()`` at which the group's setup began (its time counts against the
    budget)."""
    with running_user_code(plan, "setup"):
        model = build_group(plan, group)
        cost = estimate_cost(after_setup(plan, time.perf_counter() - started), group, model)
    seconds_setup = time.perf_counter() - started
    plan = after_setup(plan, seconds_setup)
    cost = replace(cost, training_budget=plan.setup.sweep_time_budget)
    for notice in cost.notices(models=len(group.members)):
        notify(notice)
    with running_user_code(plan, "training"):
        trained = train_group(plan, group, model, stop)
    begun = time.perf_counter()
    metrics: list[ModelMetrics | None] = [None] * len(group.members)
    if not all(d is not None for d in trained.stopped):  # every one diverged: nothing to measure
        with running_user_code(plan, "evaluation"):
            metrics = list(evaluate_group(plan, trained, cost.evaluation, stop))
    return GroupOutcome(group, trained, metrics, cost, where, seconds_setup, time.perf_counter() - begun)


@dataclass
class LocalExecutor:
    """Runs the sweep in this process, as one group (the model built once and used for the
    cost estimate, the training and the evaluation); with ``--shard I/N``, the sweep is split
    into its N parts and only the I-th is trained here."""

    def split(self, plan: AuditPlan) -> list[SweepGroup]:
        return groups_of(plan.members, 1 if plan.shard is None else plan.shard.count)

    def run(
        self,
        plan: AuditPlan,
        groups: Sequence[SweepGroup],
        *,
        stop: StopRequest,
        notify: Callable[[str], None],
        started: float,
    ) -> list[Outcome]:
        shard = plan.shard
        where = HERE if shard is None else f"{socket.gethostname()} (pid {os.getpid()})"
        return [
            run_group(plan, g, stop=stop, notify=notify, started=started, where=where)
            if shard is None or g.index == shard.index - 1
            else ElsewhereGroup(g, g.index + 1, shard.count)
            for g in groups
        ]


def judge(plan: AuditPlan, sweep: SweepOutcome) -> list[SweepRow]:
    """One row per model with its verdict (diverged models keep no metrics; models stopped too
    early are shown but not judged; a lost group's models are said lost).

    Raises:
        TrainingError: every model diverged or was lost (nothing was measured).
    """
    here = [r for r, e in zip(sweep.lost, sweep.elsewhere) if e is None]
    if all(r is not None for r in here):
        raise TrainingError(
            f"Expected the sweep's groups to come back but every one was lost (first: "
            f"{here[0]}). Try --executor local, or see the workers' logs (ray logs)."
        )
    found = [d for d in sweep.stopped if d is not None]
    if len(found) + sum(r is not None for r in here) == len(here):
        first = min(found, key=lambda d: d.step)
        advice = (
            "It was non-finite before any update, so the learning rate is not the cause: the data "
            "(NaN or infinite values, values outside [0, 1] for a Bernoulli likelihood) or the model's "
            "first output is. Try numpy.isfinite(x).all() and x.min(), x.max() on your data."
            if first.step == 0
            else f"Try a lower learning rate such as --lr {plan.lr / 10:g}."
        )
        raise TrainingError(
            f"Expected training to stay finite but the loss of every model of the sweep went "
            f"non-finite (first: the {first.term} term at step {first.step}, epoch "
            f"{first.epoch}, lr={plan.lr:g}). {advice}"
        )
    rows = []
    k, weights = plan.setup.latent_dim, plan.kl_weights
    for i, member in enumerate(plan.members):
        m, stopped, status, reason = sweep.metrics[i], sweep.stopped[i], sweep.status[i], sweep.lost[i]
        weight, beta, seed = weights[member.position], member.elbo_beta, member.seed(plan.setup.seed)
        other = sweep.elsewhere[i]
        if other is not None:
            rows.append(SweepRow(weight, beta, None, elsewhere(other), None, None, seed))
        elif reason is not None:
            rows.append(SweepRow(weight, beta, None, lost(reason), None, None, seed))
        elif stopped is not None:
            rows.append(SweepRow(weight, beta, None, diverged(stopped), stopped, status, seed))
        else:
            assert m is not None and status is not None
            early = too_early_reason(status)
            verdict = too_early(early, m, k) if early is not None else classify(m, k)
            rows.append(SweepRow(weight, beta, m, verdict, None, status, seed))
    return rows


def recommend(
    plan: AuditPlan, rows: list[SweepRow], stop: StopRequest, *, iwae_samples: int, seconds_used: float = 0.0
) -> Recommendation | None:
    """The recommended beta (calibrated decoder variance for squared-error losses, else the best
    held-out likelihood). None when there is nothing to recommend from: the calibration was cut
    short or stopped too early to tell, or no model that can be judged has a held-out
    likelihood."""
    sizes = plan.setup.sizes
    if not plan.calibrates and plan.setup.seeds > 1:
        return best_mean_iwae(rows, plan.objective, sizes, iwae_samples)
    if not plan.calibrates:
        return best_iwae(rows, plan.objective, sizes, iwae_samples)
    if stop():
        return None
    one = SweepGroup((SweepMember(0, 1.0),))
    left = plan.setup.time_budget - seconds_used
    calibrated = calibrate_sigma(
        plan.data,
        build_group(plan, one),
        _train_config(plan, one, max_seconds=max(left, 1e-3)),
        should_stop=stop,
    )
    if calibrated is None or calibrated.too_early is not None:
        return None
    return by_calibration(calibrated, rows, plan.objective, sizes)


@contextmanager
def running_user_code(plan: AuditPlan, phase: str) -> Iterator[None]:
    """Turn an exception raised inside a user's model into a clear error naming the model,
    the phase and the line of the model's file (not "a bug in vaeloss")."""
    try:
        yield
    except (VaelossError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if not plan.source.user:
            raise
        first = first_line(exc)
        hint = (
            "Try --device cpu, or create tensors in the model with the device of its inputs "
            "(torch.randn_like(std), not torch.randn(std.size()))."
            if plan.setup.device.startswith("cuda")
            else "Try running the model on a batch of the data yourself; the report's setup shows "
            "how the audit calls it (encode/decode, input shape)."
        )
        raise TrainingError(
            f"Expected your model {plan.source.name} to run during the audit's {phase} but it raised "
            f"{type(exc).__name__}: {first}{user_line(exc)}. {hint}"
        ) from None


def execute(
    plan: AuditPlan,
    *,
    executor: Executor | None = None,
    stop: StopRequest | None = None,
    notify: Callable[[str], None] | None = None,
    started: float | None = None,
) -> AuditRun:
    """Run the plan's groups on ``executor`` (default: :class:`LocalExecutor`), then judge,
    recommend and assemble the result.

    ``stop`` is asked throughout (the CLI's signal handlers set it): when it says stop, the
    phase running ends early, the later ones do only their cheap part, and the result is
    marked partial with the phase that was cut short. ``notify`` is told, before training,
    what the user should know about the budgets (the CLI prints it). ``started`` is the
    ``time.perf_counter()`` at which the audit's setup began (default: the planning's start).
    """
    stop = stop or StopRequest()
    t0 = started if started is not None else time.perf_counter() - plan.seconds_planning
    executor = executor or LocalExecutor()
    outcomes = executor.run(plan, executor.split(plan), stop=stop, notify=notify or _quiet, started=t0)
    return conclude(plan, join(outcomes, shard=None if plan.shard is None else plan.shard.index), stop)


def conclude(plan: AuditPlan, sweep: SweepOutcome, stop: StopRequest) -> AuditRun:
    """Judge every model of the sweep, recommend a beta and assemble the result (a shard,
    which has part of the sweep, recommends nothing: ``vaeloss merge`` does)."""
    timings = AuditTimings(
        setup=sweep.seconds_setup, training=sweep.seconds_training, evaluation=sweep.seconds_evaluation
    )
    plan = after_setup(plan, timings.setup)
    phase: Phase | None = "training" if sweep.interrupted else ("evaluation" if stop() else None)
    rows = judge(plan, sweep)
    evaluation = None if sweep.cost is None else sweep.cost.evaluation
    iwae = 0 if evaluation is None else evaluation.iwae_samples
    if evaluation is None:  # merged shards: the K their models were measured with
        iwae = min((m.iwae_samples or 0 for m in sweep.metrics if m is not None), default=0)
    begun = time.perf_counter()
    rec = None
    if plan.shard is None:
        with running_user_code(plan, "calibration"):
            rec = recommend(
                plan, rows, stop, iwae_samples=iwae, seconds_used=timings.setup + timings.training
            )
    timings.calibration = time.perf_counter() - begun if plan.calibrates and plan.shard is None else 0.0
    if phase is None and stop():
        phase = "recommendation"
    result = AuditResult(
        objective=plan.objective,
        setup=plan.setup,
        sweep=rows,
        current=plan.current_model,
        verdict=rows[plan.current_model].verdict,
        recommendation=rec,
        collapse_points=None
        if rec is None
        else predicted_collapse(rec, rows, plan.objective, plan.setup.sizes),
        steps=sweep.steps,
        epochs_run=sweep.epochs_run,
        seconds_training=timings.training,
        seconds_evaluation=timings.evaluation,
        evaluation=evaluation,
        interrupted_in=phase,
        signal=stop.reason if phase is not None else None,
        timings=timings,
        cost=sweep.cost,
        groups=sweep.groups if len(sweep.groups) > 1 or sweep.groups[0].where != HERE else [],
        shard=plan.shard,
    )
    if plan.shard is not None and plan.options is not None:
        from vaeloss.audit.shards import audit_identity, options_to_json

        result.identity = audit_identity(plan.options, plan)
        result.options = options_to_json(plan.options)
    return AuditRun(result, plan.data, sweep.model, sweep.history)


def _quiet(text: str) -> None:
    """The default ``notify``: the library prints nothing."""
