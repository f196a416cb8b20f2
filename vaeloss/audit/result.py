"""What an audit produced, as typed values; ``AuditResult.to_json()`` is the ``--json`` object.

Two units of beta appear throughout (the README's glossary):

* **KL weight** (``kl_weight``): the multiplier on the audited loss's *own* KL term, as the
  user writes it (``kld_weight``, ``c``, the ``--beta`` of ``vaeloss audit``). JSON:
  ``beta_own``, ``own_units``.
* **ELBO beta** (``elbo_beta``): the same objective's beta relative to the per-sample negative
  ELBO. JSON: ``effective_beta``, ``beta_elbo``, ``elbo``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from vaeloss.audit.cost import CostEstimate
from vaeloss.audit.text import format_seconds
from vaeloss.check.observe.result import ObservedSize
from vaeloss.engine.evaluate import EvaluationPlan, ModelMetrics
from vaeloss.engine.states import Divergence, ModelStatus
from vaeloss.errors import InvalidArgumentError
from vaeloss.jsontypes import JsonObject
from vaeloss.objective.convention import Convention
from vaeloss.objective.likelihoods import DecoderOutput, Likelihood

__all__ = [
    "AuditObjective",
    "AuditResult",
    "AuditSetup",
    "AuditTimings",
    "CollapsePoints",
    "Divergence",
    "GroupRecord",
    "PredictionCheck",
    "Recommendation",
    "Shard",
    "SweepRow",
    "Verdict",
    "VerdictName",
    "finite_or_none",
]

VerdictName = Literal[
    "posterior collapse",
    "unregularised latent space",
    "healthy",
    "diverged",
    "too early to tell",
    "not measured",
    "lost",
]
RecommendationRule = Literal["best-held-out-iwae", "sigma-calibration"]
Phase = Literal["training", "evaluation", "recommendation", "figures"]


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


@dataclass(frozen=True)
class AuditObjective:
    """The loss audited: its convention (KL weight 1), a description, and the user's KL weight.

    Attributes:
        convention: the objective at KL weight 1 on its own KL term.
        described: how it was given ("the size_average convention", "loss_fn in my.py"...).
        kl_weight: the user's KL weight, in the loss's own units.
        user_sizes: the sizes the user's own training step runs at, each with its origin, as
            ``vaeloss check`` read them (a run of the step, or the file's declarations); the
            user's units hold at them, not at the audit's. Empty: the audit's sizes.
        data_dim: the data dimension the loss only runs at (a hard-coded 784), or None.

    >>> from vaeloss.check.observe.result import ObservedSize
    >>> from vaeloss.objective.presets import get_convention
    >>> obj = AuditObjective(get_convention("keras_blog"), "blog", 1.0, (ObservedSize("D", 784, "x"),))
    >>> obj.elbo_beta(1.0, {"B": 64, "D": 64, "k": 8}), obj.units_sizes({"B": 64, "D": 64, "k": 8})
    (98.0, {'B': 64, 'D': 784, 'k': 8})
    """

    convention: Convention
    described: str
    kl_weight: float
    user_sizes: tuple[ObservedSize, ...] = ()
    data_dim: int | None = None

    def units_sizes(self, sizes: dict[str, int]) -> dict[str, int]:
        """The sizes the user's units hold at: the user's own where known, else ``sizes``."""
        return {**sizes, **{s.name: s.value for s in self.user_sizes}}

    def elbo_beta(self, kl_weight: float, sizes: dict[str, int]) -> float:
        """ELBO beta of a KL weight in the loss's own units (at the user's sizes where known)."""
        return self.convention.elbo_beta_for(kl_weight, **self.units_sizes(sizes))

    def kl_weight_for(self, elbo_beta: float, sizes: dict[str, int]) -> float:
        """KL weight in the loss's own units that gives ``elbo_beta`` (at the user's sizes where
        known)."""
        return self.convention.kl_weight_for(elbo_beta, **self.units_sizes(sizes))


@dataclass(frozen=True)
class AuditSetup:
    """The data, model and training settings of an audit.

    ``epochs`` and ``time_budget`` (seconds) are the training budgets (each model trains to
    convergence within them), ``sweep_time_budget`` the sweep's share of the time (the rest
    calibrates the decoder variance of a squared-error loss); ``decoder_how`` says how the
    decoder's output is read and why; ``model_described`` how a user's model is called;
    ``stacking`` how the sweep's copies of a module-based model run; ``notes`` what the audit
    noticed about the loss and the model.
    """

    data: str
    model: str
    likelihood: Likelihood
    decoder_output: DecoderOutput
    latent_dim: int
    batch_size: int
    data_dim: int
    epochs: int
    seed: int
    device: str
    lr: float = 1e-3
    time_budget: float = 180.0
    sweep_time_budget: float = 180.0
    decoder_how: str = ""
    model_described: str | None = None
    stacking: str | None = None
    notes: tuple[str, ...] = ()
    seeds: int = 1  # models per beta, each from its own seed (``--seeds``)

    @property
    def sizes(self) -> dict[str, int]:
        """B, D, k of the audit, for the convention's formulas."""
        return {"B": self.batch_size, "D": self.data_dim, "k": self.latent_dim}


@dataclass
class AuditTimings:
    """Where an audit's time went, in seconds.

    Attributes:
        setup: from the command's start to the first training step: loading the data and the
            model, reading the loss (``vaeloss check``), probing the model, timing the cost.
        training: the sweep; calibration: the decoder-variance calibration (squared-error
            losses); evaluation: the held-out metrics and the IWAE bound; figures: the figures
            and the report's files.
    """

    setup: float = 0.0
    training: float = 0.0
    calibration: float = 0.0
    evaluation: float = 0.0
    figures: float = 0.0

    @property
    def total(self) -> float:
        return self.setup + self.training + self.calibration + self.evaluation + self.figures

    def describe(self) -> str:
        """``setup 3.1 s, training 7.0 s, evaluation 3.9 s, figures 2.0 s; 16 s in all``."""
        parts = [
            f"{name} {format_seconds(getattr(self, name))}"
            for name in ("setup", "training", "calibration", "evaluation", "figures")
            if name != "calibration" or self.calibration
        ]
        return ", ".join(parts) + f"; {format_seconds(self.total)} in all"

    def to_json(self) -> dict[str, float]:
        return {
            "setup": self.setup,
            "training": self.training,
            "calibration": self.calibration,
            "evaluation": self.evaluation,
            "figures": self.figures,
            "total": self.total,
        }


@dataclass(frozen=True)
class GroupRecord:
    """Where one group ran, for the report: its models' places in the sweep, its host, its
    seconds (training, evaluation) and, for a lost group, why."""

    positions: list[int]
    where: str
    seconds_training: float = 0.0
    seconds_evaluation: float = 0.0
    lost: str | None = None
    shard: int | None = None  # the shard it belongs to (``--shard I/N``), else None
    elsewhere: bool = False  # trained by another shard: not measured here

    def to_json(self) -> JsonObject:
        return {
            "models": self.positions,
            "where": self.where,
            "seconds_training": self.seconds_training,
            "seconds_evaluation": self.seconds_evaluation,
            "lost": self.lost,
            "shard": self.shard,
            "elsewhere": self.elsewhere,
        }


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` of the sweep (1-based, as ``--shard I/N`` and SLURM's
    ``--array=1-N`` count).

    >>> Shard.parse("2/4").describe()
    'shard 2/4'
    >>> Shard.parse("5/4")
    Traceback (most recent call last):
    ...
    vaeloss.errors.InvalidArgumentError: Expected --shard I/N with 1 <= I <= N but got shard='5/4'. Try ...
    """

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` with 1 <= I <= N."""
        index, _, count = text.partition("/")
        ok = index.strip().isdigit() and count.strip().isdigit()
        if ok and 1 <= int(index) <= int(count):
            return cls(int(index), int(count))
        n = int(count) if count.strip().isdigit() and int(count) > 0 else 4
        raise InvalidArgumentError(
            f"Expected --shard I/N with 1 <= I <= N but got shard={text!r}. "
            f"Try --shard 1/{n} ... --shard {n}/{n}."
        )

    def describe(self) -> str:
        return f"shard {self.index}/{self.count}"

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


@dataclass(frozen=True)
class Verdict:
    """The verdict on one model, and the one-line headline that states it."""

    name: VerdictName
    collapsed: bool
    headline: str


@dataclass(frozen=True)
class SweepRow:
    """One model of the sweep: its KL weight, ELBO beta, metrics and verdict.

    ``metrics`` is None for a model that diverged (its numbers would be meaningless);
    ``status`` says how its training ended (converged or not, epochs).
    """

    kl_weight: float
    elbo_beta: float
    metrics: ModelMetrics | None
    verdict: Verdict
    diverged: Divergence | None = None
    status: ModelStatus | None = None
    seed: int = 0  # the model's seed (``--seed``, plus 1_000_003 per further seed of its beta)

    @property
    def converged(self) -> bool | None:
        return None if self.status is None else self.status.converged

    @property
    def ratio_kl_recon(self) -> float | None:
        m = self.metrics
        if m is None or m.recon is None:
            return None
        return m.kl / m.recon if m.recon else math.inf

    def to_json(self) -> JsonObject:
        metrics: dict[str, Any] = (
            self.metrics.to_json()
            if self.metrics is not None
            else {name: None for name in ModelMetrics.__dataclass_fields__}
        )
        return {
            "beta_elbo": self.elbo_beta,
            "beta_own": self.kl_weight,
            "seed": self.seed,
            **metrics,
            "ratio_kl_recon": self.ratio_kl_recon,
            "stopped": None if self.diverged is None else self.diverged.to_json(),
            "verdict": self.verdict.name,
            "collapsed": self.verdict.collapsed,
            "converged": self.converged,
            "epochs": None if self.status is None else self.status.epochs,
            "training": None if self.status is None else self.status.to_json(),
        }


@dataclass(frozen=True)
class Recommendation:
    """The recommended beta: the sweep row it is nearest to, in both units, and why."""

    index: int
    kl_weight: float
    elbo_beta: float
    rule: RecommendationRule
    reason: str
    sigma_trace: list[float] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        return {"own_units": self.kl_weight, "elbo": self.elbo_beta, "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True)
class PredictionCheck:
    """Predicted (from collapse points) vs measured active units at each sweep beta."""

    rows: list[dict[str, float | int]]
    mean_abs_error: float
    exact: int

    def to_json(self) -> JsonObject:
        return {"rows": self.rows, "mean_abs_error": self.mean_abs_error, "exact": self.exact}


@dataclass(frozen=True)
class CollapsePoints:
    """Per-dim collapse betas predicted from one model: beta_0 exp(2 KL_j(beta_0))."""

    reference_beta: float
    elbo_betas: list[float]
    kl_weights: list[float]
    check: PredictionCheck

    def to_json(self) -> JsonObject:
        return {
            "reference_beta": self.reference_beta,
            "betas": self.elbo_betas,
            "own_units": self.kl_weights,
            "check": self.check.to_json(),
        }


@dataclass
class AuditResult:
    """Everything an audit measured and concluded (the report is written from this)."""

    objective: AuditObjective
    setup: AuditSetup
    sweep: list[SweepRow]
    current: int
    verdict: Verdict
    recommendation: Recommendation | None
    collapse_points: CollapsePoints | None
    steps: int = 0
    epochs_run: int = 0
    seconds_training: float = 0.0
    seconds_evaluation: float = 0.0
    evaluation: EvaluationPlan | None = None
    report_dir: str | None = None
    tensorboard_dir: str | None = None
    interrupted_in: Phase | None = None
    signal: str | None = None
    timings: AuditTimings = field(default_factory=AuditTimings)
    cost: CostEstimate | None = None
    groups: list[GroupRecord] = field(default_factory=list)  # where each group ran (Ray); [] here
    shard: Shard | None = None  # the part of the sweep this report has (``--shard I/N``)
    identity: str | None = None  # a shard's audit digest (:func:`vaeloss.audit.shards.audit_identity`)
    options: JsonObject | None = None  # a shard's audit options, for ``vaeloss merge``

    @property
    def partial(self) -> bool:
        """Whether the audit was cut short (by a signal) before it measured everything."""
        return self.interrupted_in is not None

    def interrupt(self, phase: Phase, signal: str | None) -> None:
        """Mark the result partial, cut short in ``phase`` by ``signal`` (the first counts)."""
        if self.interrupted_in is None:
            self.interrupted_in, self.signal = phase, signal

    @property
    def current_row(self) -> SweepRow:
        return self.sweep[self.current]

    @property
    def unconverged(self) -> list[SweepRow]:
        """The models whose training ended before they converged (diverged ones excepted)."""
        return [r for r in self.sweep if r.diverged is None and r.converged is False]

    @property
    def headline(self) -> str:
        """The verdict's headline, marked provisional when the model audited did not converge."""
        row = self.current_row
        if self.verdict.name == "too early to tell":
            return self.verdict.headline
        if row.diverged is None and row.converged is False and row.status is not None:
            return f"{self.verdict.headline} (not converged: numbers are provisional; {row.status.why_not()})"
        return self.verdict.headline

    @property
    def elbo_beta(self) -> float:
        """The ELBO beta of the user's KL weight."""
        return self.current_row.elbo_beta

    @property
    def effective_beta_formula(self) -> str:
        return self.objective.convention.with_kl_weight(self.objective.kl_weight).effective_beta_formula

    def to_json(self) -> JsonObject:
        """The ``--json`` object (non-finite numbers as null)."""
        from vaeloss.audit.seeds import spreads  # it reads this module's rows

        cur = self.current_row.to_json()
        s = self.setup
        out = {
            "verdict": self.verdict.name,
            "collapsed": self.verdict.collapsed,
            "headline": self.headline,
            "converged": self.current_row.converged,
            "unconverged_models": len(self.unconverged),
            "partial": self.partial,
            "convention": self.objective.convention.name,
            "described": self.objective.described,
            "likelihood": s.likelihood,
            "decoder_output": s.decoder_output,
            "data": s.data,
            "model": s.model,
            "latent_dim": s.latent_dim,
            "batch_size": s.batch_size,
            "data_dim": s.data_dim,
            "epochs": s.epochs,
            "lr": s.lr,
            "time_budget": s.time_budget,
            "sweep_time_budget": s.sweep_time_budget,
            "decoder_how": s.decoder_how,
            "model_interface": s.model_described,
            "stacking": s.stacking,
            "notes": list(s.notes),
            "steps": self.steps,
            "epochs_run": self.epochs_run,
            "interrupted": None
            if self.interrupted_in is None
            else {"phase": self.interrupted_in, "signal": self.signal},
            "seed": s.seed,
            "seeds": s.seeds,
            "per_beta": [b.to_json() for b in spreads(self.sweep)] if s.seeds > 1 else None,
            "device": s.device,
            "beta_own": self.objective.kl_weight,
            "effective_beta": self.elbo_beta,
            "effective_beta_formula": self.effective_beta_formula,
            **{
                key: cur[key]
                for key in (
                    "active_units",
                    "kl_per_dim",
                    "kl",
                    "recon",
                    "ratio_kl_recon",
                    "mutual_information",
                    "iwae_nll",
                    "iwae_se",
                    "marginal_kl",
                    "aggregate_kl",
                    "output_diversity",
                    "latent_usage",
                )
            },
            "recommended_beta": None if self.recommendation is None else self.recommendation.to_json(),
            "collapse_points": None if self.collapse_points is None else self.collapse_points.to_json(),
            "sweep": [row.to_json() for row in self.sweep],
            "stopped": [None if r.diverged is None else r.diverged.to_json() for r in self.sweep],
            "seconds_training": self.seconds_training,
            "seconds_evaluation": self.seconds_evaluation,
            "seconds": self.timings.to_json(),
            "cost": None if self.cost is None else self.cost.to_json(),
            "evaluation": None if self.evaluation is None else self.evaluation.to_json(),
            "report_dir": self.report_dir,
            "tensorboard_dir": self.tensorboard_dir,
            "groups": [g.to_json() for g in self.groups],
            "shard": None if self.shard is None else self.shard.to_json(),
            "identity": self.identity,
            "options": self.options,
        }
        cleaned: dict[str, Any] = finite_or_none(out)
        return cleaned
