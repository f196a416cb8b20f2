"""The search over ways to call a loss: each call form, layout of the data and kind of data, in
order, until one makes every value the loss returns fit exactly; and how the fitted values are
read, as the loss or as its components."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from vaeloss.check.forms import CallForm
from vaeloss.check.objects import LossObject, StateGuard
from vaeloss.check.probe.backend import Backend, TorchBackend
from vaeloss.check.probe.calling import Caller, CallWatch
from vaeloss.check.probe.inputs import layouts
from vaeloss.check.probe.measure import NotFinite, Plan, ProbeFailure, fit_at
from vaeloss.check.probe.outputs import ReturnValueError
from vaeloss.check.result import ElementFit
from vaeloss.objective.kl import PARAMETERISATIONS

__all__ = ["Reading", "function_callers", "read", "search"]


@dataclass
class Reading:
    """The values a call form gives, read as the loss and its components."""

    fits: list[ElementFit]
    total: int | None
    components: tuple[int, int] | None
    constants: list[int]

    @property
    def score(self) -> tuple[int, float]:
        """0: a value that is the whole loss fits exactly; 1: exact components; 2: misfit;
        3: no value depends on the inputs at all."""
        if all(not f.a and not f.b for f in self.fits):
            return 3, 0.0
        if self.total is not None and self.fits[self.total].exact:
            return 0, 0.0
        if self.components is not None:
            r, k = self.components
            if self.fits[r].exact and self.fits[k].exact:
                return 1, 0.0
        best = min(f.recon_residual + f.kl_residual for f in self.fits)
        return 2, best


def read(fits: list[ElementFit]) -> Reading:
    total = next((i for i, f in enumerate(fits) if f.a and f.b and f.exact), None)
    if total is None:
        total = next((i for i, f in enumerate(fits) if f.a and f.b), None)
    recon_only = [i for i, f in enumerate(fits) if f.a and not f.b]
    kl_only = [i for i, f in enumerate(fits) if f.b and not f.a]
    constants = [i for i, f in enumerate(fits) if not f.a and not f.b]
    components = None
    if (total is None or not fits[total].exact) and recon_only and kl_only:
        components = (recon_only[0], kl_only[0])
        total = None
    elif total is None and len(fits) == 1:
        total = 0  # one value with one term: the report says which term is missing
    return Reading(fits, total, components, constants)


def attempt_error(shape: tuple[int, ...], binary: bool, form: CallForm, exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    roles = ", ".join(f"{k}={v}" for k, v in form.describe().items())
    data = "binary" if binary else "continuous"
    return f"{data} data of shape [B, {', '.join(map(str, shape))}], {roles}: {type(exc).__name__}: {text}"


def function_callers(
    obj: LossObject,
    forms: list[CallForm],
    extra: dict[str, object],
    *,
    D: int,
    input_shape: tuple[int, ...] | None,
    guard: StateGuard,
    timings: list[float],
    watch: CallWatch | None = None,
    backend: Backend | None = None,
) -> Iterator[Caller]:
    """Callers for a loss function: every call form, layout of the data and kind of data
    (continuous first; binary for losses that refuse non-binary targets; image-shaped data with a
    flat reconstruction last), with the arrays of
    ``backend`` (default: torch), then of its fallbacks (TensorFlow in float32). A form that
    passes a sample ``z`` is tried with ``z`` drawn from the scale read in each
    parameterisation (log-variance first): a Monte-Carlo KL of it fits in expectation only when
    ``z`` is drawn from the posterior its log-densities describe."""
    backend = backend or TorchBackend()
    for each in (backend, *backend.fallbacks()):
        for binary in (False, True):
            shapes = layouts(D, input_shape, each.channels_last)
            flat = [(s, False) for s in shapes] + [(s, True) for s in shapes if len(s) > 1]
            for shape, recon_flat in flat:
                for form in forms:
                    z_from = PARAMETERISATIONS if form.takes_z else ("logvar",)
                    for p in z_from:
                        yield Caller(
                            obj, form, extra, shape, binary, guard, timings, watch, each, p, recon_flat
                        )


def _better(score: tuple[int, float], best: tuple[int, float]) -> bool:
    """Whether a reading beats the best so far: a better kind of fit, or, between two misfits,
    one ten times closer (else the earlier one, whose roles the names gave, is kept).

    >>> _better((0, 0.0), (2, 0.1)), _better((2, 0.05), (2, 0.1)), _better((2, 0.005), (2, 0.1))
    (True, False, True)
    """
    if score[0] != best[0]:
        return score[0] < best[0]
    return score[1] < 0.1 * best[1] if score[0] == 2 else False


def search(
    callers: Iterable[Caller], *, B: int, k: int, plan: Plan, monte_carlo: bool = False
) -> tuple[Caller, Reading]:
    """The caller under which the loss fits best (the first exact one), with its fit at the
    base sizes (averaged over seeds with ``monte_carlo``).

    Raises:
        ProbeFailure: no caller could call the loss, or it returned something that is not a loss.
    """
    errors: list[str] = []
    best: tuple[tuple[int, float], Caller, Reading] | None = None
    for call in callers:
        D = math.prod(call.shape)
        try:
            reading = read(fit_at(call, B, D, k, plan, monte_carlo=monte_carlo))
        except NotFinite as exc:
            if best is None:  # under the first way of calling it that runs: the loss's own fault
                raise
            # a later way (the means where it takes logs of scales): the next; the first that ran
            # fits or misfits with finite values, and that is what is reported
            errors.append(attempt_error(call.shape, call.binary, call.form, exc))
            continue
        except ReturnValueError as exc:
            if best is None:  # the first way that runs: the loss's own return value
                raise
            # a later layout (images, where the loss reduces dim=1 of flat data): the next
            errors.append(attempt_error(call.shape, call.binary, call.form, exc))
            continue
        except ProbeFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - try the next form or layout
            errors.append(attempt_error(call.shape, call.binary, call.form, exc))
            continue
        if best is None or _better(reading.score, best[0]):
            best = (reading.score, call, reading)
        if reading.score[0] <= 1:
            break
    if best is None:
        if not errors:
            raise ProbeFailure("no way to pass (reconstruction, data, mu, logvar) to its parameters")
        raise ProbeFailure("the function raised on every input layout tried:\n  " + "\n  ".join(errors[-4:]))
    if all(not f.a and not f.b for f in best[2].fits):
        values = ", ".join(f"{f.c:.6g}" for f in best[2].fits)
        raise ProbeFailure(
            f"the function's value does not change with the reconstruction or the latents (it returned "
            f"{values} for every input): it is not a VAE loss of these arguments"
        )
    return best[1], best[2]
