"""The options of a training run (:class:`TrainConfig`), checked in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from vaeloss.engine.convergence import ConvergenceRule
from vaeloss.engine.schedules import Schedule
from vaeloss.errors import InvalidArgumentError
from vaeloss.objective.likelihoods import (
    ALLOWED_OUTPUTS,
    LIKELIHOODS,
    DecoderOutput,
    Likelihood,
    default_decoder_output,
)
from vaeloss.validation import check_choice, check_nonnegative, check_positive, check_positive_int

__all__ = ["TrainConfig", "Until"]

Until = Literal["epochs", "converged"]


@dataclass
class TrainConfig:
    """Options of :func:`~vaeloss.engine.trainer.train` (betas in ELBO units, one per model).

    ``bf16=True`` runs the forward pass under bfloat16 autocast (for GPUs with fast bf16;
    the losses and the optimiser stay in float32). ``compile=True`` compiles the forward and
    loss with ``torch.compile`` (for long GPU runs; on a 2-core CPU it costs about 25 s once and
    gained nothing measurable in ``bench/train_speed.py``). ``optimal_sigma`` uses the ML shared
    decoder variance of each batch (sigma-VAE) instead of ``sigma``. ``decoder_output`` says
    what the model's decoder emits: logits (the built-in models' Bernoulli kinds),
    probabilities, or a mean (Gaussian); None picks logits or mean from the likelihood.

    ``until="converged"`` trains each model until the plateau ``rule`` says it converged
    (``epochs`` and ``max_seconds`` are then budgets); ``lr_warmup_steps`` ramps the learning
    rate up linearly over the first steps. ``max_seconds`` includes the validation pass after
    each epoch: the last epoch is cut short so that its validation still fits.
    ``progress``: None a bar on a terminal only, True also lines on stderr elsewhere, False none.
    """

    betas: Sequence[float] = (1.0,)
    likelihood: Likelihood = "bernoulli"
    decoder_output: DecoderOutput | None = None
    sigma: float = 1.0
    optimal_sigma: bool = False
    loss_scale: float = 1.0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    until: Until = "epochs"
    max_seconds: float | None = None
    rule: ConvergenceRule = field(default_factory=ConvergenceRule)
    lr_warmup_steps: int = 0
    schedule: Schedule = "constant"
    warmup_fraction: float = 0.25
    cycles: int = 4
    free_bits: float = 0.0
    seed: int = 0
    model_seeds: Sequence[int] | None = None
    device: str = "auto"
    analytic: bool | None = None
    progress: bool | None = None
    full_batch: bool = False
    cosine_lr: bool = False
    bf16: bool = False
    compile: bool = False

    @property
    def output_kind(self) -> DecoderOutput:
        """What the decoder emits (``decoder_output``, or the default for the likelihood)."""
        return self.decoder_output or default_decoder_output(self.likelihood)

    def validate(self) -> None:
        if not self.betas:
            raise InvalidArgumentError("Expected at least one beta but got betas=[]. Try betas=[1.0].")
        for b in self.betas:
            check_nonnegative("beta", b)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_choice("decoder_output", self.output_kind, ALLOWED_OUTPUTS[self.likelihood])
        check_choice("schedule", self.schedule, ("constant", "linear", "cyclical"))
        check_choice("until", self.until, ("epochs", "converged"))
        if self.max_seconds is not None:
            check_positive("max_seconds", self.max_seconds)
        check_positive("sigma", self.sigma)
        check_positive("loss_scale", self.loss_scale)
        default = type(self)  # the dataclass's defaults, as the errors' advice
        check_positive("lr", self.lr, example=default.lr)
        check_positive_int("epochs", self.epochs, example=default.epochs)
        check_positive_int("batch_size", self.batch_size, example=default.batch_size)
        check_nonnegative("free_bits", self.free_bits)
