"""What an audit will do, decided before anything trains: :func:`plan_audit` validates every
input and resolves the objective and its units, the data, the model (a :class:`~vaeloss.engine.
build.ModelSource`), the sweep and the settings into an :class:`AuditPlan`, plain data that can
be pickled and executed in this process or elsewhere (:mod:`vaeloss.audit.execute`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import cast

from vaeloss.audit import defaults
from vaeloss.audit.result import AuditObjective, AuditSetup, Shard
from vaeloss.check.inline import is_inline_name
from vaeloss.check.result import CheckReport
from vaeloss.engine.build import BUILT_IN, BuiltInKind, BuiltInModel, ModelSource
from vaeloss.engine.data import Binarization, Dataset, load_dataset, prepare_for_likelihood
from vaeloss.engine.decoder_output import DecoderKind, decoder_output_for
from vaeloss.engine.evaluate import MIN_ROWS
from vaeloss.engine.models import DataScaling
from vaeloss.engine.trainer import resolve_device
from vaeloss.errors import DataError, InvalidArgumentError, LossCheckError
from vaeloss.objective.likelihoods import DecoderOutput, default_decoder_output
from vaeloss.objective.presets import get_convention
from vaeloss.threads import single_threaded
from vaeloss.validation import check_nonnegative, check_positive, check_positive_int

__all__ = [
    "AUTO_GRID",
    "AuditOptions",
    "AuditPlan",
    "Evaluation",
    "Shard",
    "SweepMember",
    "check_data_limits",
    "check_latent_dim",
    "plan_audit",
    "plan_sweep",
    "resolve_objective",
]

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
    seeds: int = 1
    iwae_samples: int = 1000
    progress: bool | None = None
    calibrate: bool = True
    shard: str | None = None  # "I/N": train the I-th of N parts of the sweep (``--shard``)


@dataclass(frozen=True)
class Evaluation:
    """How the evaluation is to run: the most IWAE samples, its budget (seconds; None: none),
    progress on stderr, and whether a squared-error loss's decoder variance is calibrated."""

    iwae_samples: int = 1000
    budget: float | None = defaults.EVAL_BUDGET
    progress: bool | None = None
    calibrate: bool = True


@dataclass(frozen=True)
class SweepMember:
    """One model of the sweep: its position in the whole sweep, its ELBO beta, and its
    replicate (a second seed of the same beta: replicate r is seeded ``seed + r * 1_000_003``).
    Its seed depends on its place in the sweep only, never on the group it is trained in."""

    position: int
    elbo_beta: float
    replicate: int = 0

    def seed(self, base: int) -> int:
        return base + self.replicate * 1_000_003


@dataclass
class AuditPlan:
    """Everything decided before training: objective, setup, data, model source and sweep.

    Plain data (a user's class is loaded again, by its spec, where the plan runs), so that a
    plan can be executed in another process.
    """

    objective: AuditObjective
    setup: AuditSetup
    data: Dataset
    source: ModelSource
    lr: float
    elbo_betas: list[float]
    current: int
    evaluation: Evaluation
    seconds_planning: float = 0.0
    options: AuditOptions | None = None  # as given (a shard's report keeps them for the merge)
    shard: Shard | None = None  # the part of the sweep this audit trains (``--shard I/N``)

    @property
    def kl_weights(self) -> list[float]:
        return [self.objective.kl_weight_for(b, self.setup.sizes) for b in self.elbo_betas]

    @property
    def members(self) -> list[SweepMember]:
        """Every model of the sweep, beta by beta, each beta's seeds in turn (``--seeds``)."""
        return [SweepMember(i, b, r) for i, b in enumerate(self.elbo_betas) for r in range(self.setup.seeds)]

    @property
    def current_model(self) -> int:
        """The position in :attr:`members` of the current beta's first seed."""
        return self.current * self.setup.seeds

    @property
    def calibrates(self) -> bool:
        """Whether the decoder variance is calibrated after the sweep (squared-error losses)."""
        return self.setup.likelihood == "gaussian" and self.evaluation.calibrate


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


def _checked(opts: AuditOptions, loss: str, data_dim: int) -> CheckReport:
    """``vaeloss check`` of the loss at the sizes it finds (a training script's own, by a run of
    its step; a hard-coded 784), else at the data's dimension (a loss written for it:
    ``x.view(-1, 64)``)."""
    from vaeloss.check.runner import check_loss

    try:
        return check_loss(loss, args=dict(opts.args))
    except LossCheckError:
        return check_loss(loss, args=dict(opts.args), data_dim=data_dim)


def _from_check(opts: AuditOptions, loss: str, data_dim: int) -> AuditObjective:
    """The objective of a user's loss file, read by ``vaeloss check`` (:func:`_checked`): the
    user's units hold at the sizes it read from the file."""
    try:
        report = _checked(opts, loss, data_dim)
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
            f"{loss} is not ({codes}). Try 'vaeloss check {loss}' for details, "
            f"or --convention NAME."
        )
    if conv.kl_base.coef <= 0:
        raise LossCheckError(
            f"Expected a positive KL term but {loss} has factor {conv.kl_base.formula()}. "
            f"Try 'vaeloss check {loss}'."
        )
    weight = 1.0 if opts.kl_weight is None else opts.kl_weight
    path, _, name = loss.rpartition(":")
    where = path if path and (name.isidentifier() or name.isdigit()) else loss
    named = report.described if is_inline_name(report.function) else report.function
    seen = report.observed.sizes if report.observed is not None else ()
    fixed = report.sizes["D"] if "D" in report.fixed_dims else None
    return AuditObjective(conv, f"{named} in {where}", weight, seen, fixed)


def resolve_objective(opts: AuditOptions, data_dim: int) -> AuditObjective:
    """The loss audited (a user's file read by ``vaeloss check``, a preset, or the per-sample
    ELBO) and the user's KL weight in its own units; ``data_dim``: the data's."""
    if opts.loss and opts.convention:
        raise InvalidArgumentError(
            f"Expected --loss or --convention, not both, but got loss={opts.loss!r}, "
            f"convention={opts.convention!r}. Try one of them."
        )
    if opts.loss:
        return _from_check(opts, opts.loss, data_dim)
    if opts.convention:
        conv = get_convention(opts.convention)
        weight = float(conv.kl_weight) if opts.kl_weight is None else opts.kl_weight
        return AuditObjective(conv.with_kl_weight(1), f"the {conv.name} convention", weight)
    conv = get_convention("per_sample_mean")
    return AuditObjective(conv, "the per-sample ELBO", 1.0 if opts.kl_weight is None else opts.kl_weight)


def plan_sweep(objective: AuditObjective, sweep: str, sizes: dict[str, int]) -> tuple[list[float], int]:
    """The ELBO betas to train (the user's among them) and the index of the user's."""
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
            f"diversity compares pairs of rows. Try a data set with at least {MIN_ROWS * 5} rows."
        )
    if batch_size > n_train:
        raise InvalidArgumentError(
            f"Expected --batch-size at most the {n_train} training rows of data={ds.name!r} but got "
            f"batch_size={batch_size} (the effective beta would use a batch size no step has). "
            f"Try --batch-size {min(64, n_train)}."
        )


def check_fixed_data_dim(objective: AuditObjective, ds: Dataset) -> None:
    """A loss that only runs at one data dimension (a hard-coded 784) needs data of it."""
    D = objective.data_dim
    if D is None or D == ds.dim:
        return
    side = math.isqrt(D)
    hint = (
        f"--data digits (upsampled to {side}x{side} for it)" if side * side == D else f"data of dimension {D}"
    )
    raise DataError(
        f"Expected data of dimension D={D} for {objective.described} (it runs only at D={D}: a "
        f"hard-coded size) but got data={ds.name!r} with D={ds.dim}. Try {hint}, or write the loss "
        f"without a fixed size (x.view(x.size(0), -1) instead of x.view(-1, {D}))."
    )


def check_latent_dim(k: int, data_dim: int, *, user_model: bool) -> None:
    """Raise unless the latent dim is at most the data dim (no more dims can carry information)."""
    if k > data_dim:
        where, fix = (
            (
                "your model's latent dim",
                f"the data your model is made for (--data; D={data_dim} is the data's), or a model "
                f"with a latent dim of at most {data_dim}",
            )
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


def _decoder_output(source: ModelSource, objective: AuditObjective, ds: Dataset) -> tuple[DecoderOutput, str]:
    """What the likelihood reads the model's outputs as, and why (for the report)."""
    likelihood = objective.convention.likelihood
    sem = source.semantics
    if sem is None:
        kind = default_decoder_output(likelihood)
        return kind, f"the built-in decoder emits {kind}"
    lo = min(float(ds.x_train.min()), float(ds.x_val.min()))
    hi = max(float(ds.x_train.max()), float(ds.x_val.max()))
    kind = decoder_output_for(
        sem, likelihood, data_range=(lo, hi), loss_reads=objective.convention.decoder_output
    )
    what = {"probabilities": "probabilities", "logits": "logits", "mean": "a mean"}[kind]
    if kind == "logits" and likelihood == "gaussian":
        what = "logits (the Gaussian mean is their sigmoid)"
    rng = f" in [{sem.low:g}, {sem.high:g}]" if kind == "mean" and sem.squashed else ""
    return kind, f"read as {what}{rng}: {sem.how}"


def _data_notes(objective: AuditObjective, ds: Dataset) -> tuple[str, ...]:
    """The built-in digits resized for a loss that runs at one data dimension only."""
    if ds.name != "digits" or ds.shape == (1, 8, 8):
        return ()
    side = "x".join(map(str, ds.shape[1:]))
    return (
        f"the built-in digits resized from 8x8 to {side} (bilinear, values in [0, 1]): "
        f"{objective.described} runs only at D={objective.data_dim}",
    )


def _notes(objective: AuditObjective, kind: DecoderOutput, source: ModelSource) -> tuple[str, ...]:
    """What the audit noticed about the loss and a user's model: a loss that reads the decoder's
    output differently from the model, a decoder returning rows of another shape."""
    iface, sem = source.interface, source.semantics
    shape = iface.output_mismatch() if iface is not None else None
    wants = objective.convention.decoder_output
    out = [] if shape is None else [shape]
    if sem is None or wants is None or wants == kind:
        return tuple(out)
    if objective.convention.likelihood == "gaussian":
        if wants == "logits" and sem.last_op in ("sigmoid", "hardsigmoid"):
            out.insert(
                0,
                "your loss applies a sigmoid to the decoder's output before the squared error but "
                "the model's decoder already ends in a sigmoid: in your training the sigmoid is "
                "applied twice, so reconstructions stay within [0.5, 0.73]. The audit reads the output "
                "as the mean; drop one of the two sigmoids.",
            )
    elif wants == "logits" and kind == "probabilities":
        out.insert(
            0,
            "your loss reads the decoder's output as logits (e.g. binary_cross_entropy_with_logits) "
            "but the model's decoder already ends in a sigmoid: in your training the sigmoid is "
            "applied twice, so reconstructions cannot go below 0.27 or above 0.73. The audit reads "
            "the output as probabilities; drop the sigmoid or use binary_cross_entropy.",
        )
    elif wants == "probabilities" and kind == "logits":
        out.insert(
            0,
            "your loss reads the decoder's output as probabilities (binary_cross_entropy) but the "
            "decoder's output is not squashed to [0, 1]: add a sigmoid to the model or use "
            "binary_cross_entropy_with_logits. The audit reads the output as logits.",
        )
    return tuple(out)


@dataclass(frozen=True)
class _Numbers:
    """The audit's numeric options, checked."""

    batch_size: int
    epochs: int
    lr: float


def _check_numbers(opts: AuditOptions) -> _Numbers:
    if opts.kl_weight is not None:
        check_nonnegative("beta", opts.kl_weight)
    _sweep_values(opts.sweep)
    if opts.latent_dim is not None:
        check_positive_int("latent_dim", opts.latent_dim, example=8)
    B = check_positive_int(
        "batch_size",
        defaults.BATCH_SIZE if opts.batch_size is None else opts.batch_size,
        example=defaults.BATCH_SIZE,
    )
    epochs = check_positive_int(
        "epochs", defaults.MAX_EPOCHS if opts.epochs is None else opts.epochs, example=defaults.MAX_EPOCHS
    )
    lr = check_positive(
        "lr", defaults.LEARNING_RATE if opts.lr is None else opts.lr, example=defaults.LEARNING_RATE
    )
    check_positive("time_budget", opts.time_budget, example=defaults.TIME_BUDGET)
    check_positive_int("seeds", opts.seeds, example=3)
    if opts.eval_budget is not None:
        check_positive("eval_budget", opts.eval_budget, example=defaults.EVAL_BUDGET)
    check_positive_int("iwae_samples", opts.iwae_samples, example=1000)
    return _Numbers(B, epochs, lr)


def _model_source(opts: AuditOptions, ds: Dataset, user: bool) -> ModelSource:
    """The user's model, loaded and probed; or the built-in kind (its scaling set later)."""
    if user:
        from vaeloss.audit.usermodel import load_user_model

        return load_user_model(
            opts.model,
            init=opts.init,
            model_api=opts.model_api,
            decoder_output=opts.decoder_output,
            x=ds.x_train[:8],
            data_shape=ds.shape,
        )
    hidden = tuple(opts.hidden) if opts.hidden is not None else defaults.hidden_for(ds.dim)
    # the default latent dim never exceeds the data dim; one asked for is checked later
    k = min(defaults.latent_dim_for(ds.dim), ds.dim) if opts.latent_dim is None else opts.latent_dim
    return BuiltInModel(cast(BuiltInKind, opts.model), ds.dim, tuple(ds.shape), hidden, k)


def _data(opts: AuditOptions, data_dim: int | None = None) -> Dataset:
    return load_dataset(
        opts.data,
        data_dir=opts.data_dir,
        download=opts.download,
        likelihood=None,
        rescale=opts.rescale,
        seed=opts.seed,
        data_dim=data_dim,
    )


def plan_audit(opts: AuditOptions) -> AuditPlan:
    """Validate every input and decide what the audit does. Trains nothing; raises a
    :class:`~vaeloss.errors.VaelossError` on bad input. Runs on one thread (small work)."""
    started = time.perf_counter()
    with single_threaded():
        plan = _plan(opts)
    plan.seconds_planning = time.perf_counter() - started
    return plan


def _plan(opts: AuditOptions) -> AuditPlan:
    n = _check_numbers(opts)
    device = resolve_device(opts.device)
    user = _check_model_options(opts)
    ds = _data(opts)
    objective = resolve_objective(opts, ds.dim)
    if objective.data_dim not in (None, ds.dim):  # a loss fixed at 784: the digits come at 28x28
        ds = _data(opts, objective.data_dim)
    check_fixed_data_dim(objective, ds)
    check_data_limits(ds, batch_size=n.batch_size)
    source = _model_source(opts, ds, user)
    check_latent_dim(source.latent_dim, ds.dim, user_model=user)
    sizes = {"B": n.batch_size, "D": ds.dim, "k": source.latent_dim}
    likelihood = objective.convention.likelihood
    ds = prepare_for_likelihood(ds, likelihood, binarization=opts.binarize, seed=opts.seed)
    decoder_output, how = _decoder_output(source, objective, ds)
    if isinstance(source, BuiltInModel):  # the built-in models see standardised data
        scaling = DataScaling.from_data(
            ds.x_train, logits=decoder_output == "logits", multinomial=likelihood == "multinomial"
        )
        source = BuiltInModel(
            source.kind, source.data_dim, source.shape, source.hidden, source.latent_dim, scaling
        )
    _, stacking = source.build(1, None, ds.x_train[:8])
    betas, current = plan_sweep(objective, opts.sweep, sizes)
    evaluation = Evaluation(opts.iwae_samples, opts.eval_budget, opts.progress, opts.calibrate)
    share = defaults.SWEEP_SHARE_WHEN_CALIBRATING if likelihood == "gaussian" and opts.calibrate else 1.0
    iface = source.interface
    setup = AuditSetup(
        data=opts.data,
        model=opts.model,
        likelihood=likelihood,
        decoder_output=decoder_output,
        latent_dim=source.latent_dim,
        batch_size=n.batch_size,
        data_dim=ds.dim,
        epochs=n.epochs,
        seed=opts.seed,
        seeds=opts.seeds,
        device=str(device),
        lr=n.lr,
        time_budget=opts.time_budget,
        sweep_time_budget=opts.time_budget * share,
        decoder_how=how,
        model_described=None if iface is None else iface.describe(),
        stacking=stacking.describe() if opts.model not in ("mlp", "linear") else None,
        notes=_data_notes(objective, ds) + _notes(objective, decoder_output, source),
    )
    plan = AuditPlan(objective, setup, ds, source, n.lr, betas, current, evaluation, options=opts)
    if opts.shard is not None:
        plan.shard = _check_shard(Shard.parse(opts.shard), len(plan.members), len(betas), opts.seeds)
    return plan


def _check_shard(shard: Shard, models: int, betas: int, seeds: int) -> Shard:
    """The shard, unless there are more shards than models (a shard would train nothing)."""
    if shard.count > models:
        raise InvalidArgumentError(
            f"Expected at most one shard per model ({models} models: {betas} betas x {seeds} seeds) but "
            f"got shard='{shard.index}/{shard.count}'. Try --shard {min(shard.index, models)}/{models}."
        )
    return shard
