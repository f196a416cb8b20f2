"""Run a check: read the file, probe the loss in a separate process, build the report.

The worker process (:mod:`vaeloss.check.worker`) reports its phases and each call of the
user's code on a pipe of its own; ``--timeout`` counts the time spent in the user's code
(loading the file, and the calls of the loss), not Python's and torch's start-up nor the
probe's own work, so that a busy machine does not make an ordinary loss time out. A time-out
says which phase ran out (loading the file, or calling the loss) with the time each call
took. vaeloss's own work has a limit of its own (:data:`OWN_LIMIT`), far above what it needs.
"""

from __future__ import annotations

import math
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from vaeloss.check.findings import Context, build_findings, build_fix
from vaeloss.check.inline import InlineLoss, inline_words
from vaeloss.check.observe.mode import Mode, choose_mode
from vaeloss.check.observe.result import Observation
from vaeloss.check.observe.torch_step import qualified
from vaeloss.check.protocol import (
    CallStarted,
    CheckAnswer,
    CheckFailure,
    CheckRequest,
    Message,
    PhaseStarted,
    TapNames,
    decode,
    encode,
)
from vaeloss.check.result import CandidateSummary, CheckReport, fit_monomial
from vaeloss.check.source import StaticSource, read_static, select
from vaeloss.errors import LossCheckError, NoLossError
from vaeloss.usercode.frameworks import FrameworkUse, detect_framework, require_framework
from vaeloss.usercode.keras2 import keras2_names
from vaeloss.usercode.sourcefile import read_source_file
from vaeloss.usercode.target import Target, resolve_target
from vaeloss.validation import check_positive, check_positive_int

__all__ = ["CheckReport", "check_loss"]

STARTUP_LIMIT = 180.0
"""Seconds the worker may take to start Python and torch, before ``--timeout`` starts."""
DEFAULT_BATCH_SIZE = 128
DEFAULT_LATENT_DIM = 20
"""The sizes B and k a loss is checked at when none are given (D: the loss's own, else 784)."""
DEFAULT_TIMEOUT = 60.0
"""Seconds of the user's code (loading the file, calling the loss) a check allows by default."""
OWN_LIMIT = 600.0
"""Seconds the probe's own work (outside the user's code) may take in all."""
_MISSING_FRAMEWORKS = ("lightning", "pytorch_lightning")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


class _Worker:
    """The worker process and what it has said so far."""

    def __init__(self, request: CheckRequest, timeout: float) -> None:
        self.request, self.timeout = request, timeout
        self.phase = "start"
        self.calls: list[float] = []
        self.answer: CheckAnswer | CheckFailure | None = None
        self.user_seconds = 0.0  # in the user's code, finished parts
        self.user_since: float | None = None  # the user's code running since (monotonic)
        self.own_since: float | None = None  # the user's file started loading at
        self.started = time.monotonic()

    def run(self) -> CheckAnswer | CheckFailure:
        tmp = Path(tempfile.mkdtemp(prefix="vaeloss-check-"))
        try:
            return self._run(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _run(self, tmp: Path) -> CheckAnswer | CheckFailure:
        request = replace(self.request, writable=(str(tmp),))
        read_fd, write_fd = os.pipe()
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env.update(
            PYTHONPATH=root + os.pathsep + env.get("PYTHONPATH", ""),
            TMPDIR=str(tmp),
            MPLCONFIGDIR=str(tmp),
            PYTHONDONTWRITEBYTECODE="1",
            MPLBACKEND="Agg",
        )
        out_path, err_path = tmp / "stdout", tmp / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vaeloss.check.worker", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                pass_fds=(write_fd,),
                env=env,
            )
        os.close(write_fd)
        assert proc.stdin is not None
        proc.stdin.write(encode(request))
        proc.stdin.close()
        try:
            self._listen(read_fd, proc)
        finally:
            os.close(read_fd)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if self.answer is None:
            tail = (err_path.read_text(errors="replace") or out_path.read_text(errors="replace")).strip()
            lines = tail.splitlines()[-5:]
            raise LossCheckError(
                f"Expected the check of {self.request.path} to finish but its process exited with "
                f"status {proc.returncode} before reporting (os._exit or a crash?). "
                + ("Its last output: " + " | ".join(lines) if lines else "It printed nothing.")
            )
        return self.answer

    def _left(self, now: float) -> float:
        """Seconds until a limit runs out: the start-up's, the user's code's, or the probe's own."""
        if self.phase == "start":
            return self.started + STARTUP_LIMIT - now
        user = self._user(now)
        own = (now - self.own_since) - user if self.own_since is not None else 0.0
        return min(self.timeout - user, OWN_LIMIT - own)

    def _user(self, now: float) -> float:
        """Seconds spent in the user's code so far."""
        return self.user_seconds + (0.0 if self.user_since is None else now - self.user_since)

    def _listen(self, fd: int, proc: subprocess.Popen[bytes]) -> None:
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        buffer = b""
        self.started = time.monotonic()
        while self.answer is None:
            left = self._left(time.monotonic())
            if left <= 0:
                raise LossCheckError(self._timeout_message())
            if not sel.select(timeout=min(left, 1.0)):
                if proc.poll() is not None:
                    return
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._receive(decode(line), time.monotonic())

    def _receive(self, message: Message, now: float) -> None:
        if isinstance(message, (CheckAnswer, CheckFailure)):
            self.answer = message
        elif isinstance(message, PhaseStarted):
            if message.phase == "observe" or (message.phase == "import" and self.user_since is None):
                self.own_since = self.user_since = now  # running or loading the user's file: their code
            elif message.phase == "call" and self.user_since is not None:
                self.user_seconds += now - self.user_since
                self.user_since = None
            self.phase = message.phase
        elif isinstance(message, CallStarted):
            self.user_since = now
        else:
            self.calls.append(message.seconds)
            self.user_seconds += message.seconds
            self.user_since = None

    def _timeout_message(self) -> str:
        names = self.request.names
        name = inline_words(names[0]) if len(names) == 1 else "the loss"
        path = Path(self.request.path).name
        t = self.timeout
        if self.phase == "start":
            return (
                f"Expected the check's worker process to start Python and torch within "
                f"{STARTUP_LIMIT:g} s but it did not (a very busy machine?). Try again."
            )
        user = self._user(time.monotonic())
        if user < self.timeout and self.own_since is not None:
            return (
                f"Expected the probe's own work to finish within {OWN_LIMIT:g} s but it did not "
                f"(your code ran {user:.1f} s of its timeout={t:g} s; a very busy machine?). Try again."
            )
        if self.phase == "observe":
            return (
                f"Expected {path} to reach its first backward() within timeout={t:g} s but running it "
                f"did not get there (the run phase; one busy in C code cannot be stopped early). "
                f"Try --timeout {2 * t:g}, or --mode call to call the loss without running the file."
            )
        if self.phase == "import":
            return (
                f"Expected {path} to load within timeout={t:g} s but loading its top-level "
                f"statements did not finish (the import phase). Loops, `with` blocks, bare calls and "
                f"the main guard are not run, and any other statement that runs past 3 s is "
                f"skipped, but one busy in C code (a download, a large tensor operation) cannot be "
                f"stopped early. Try --timeout {2 * t:g}, or move that statement under "
                f"`if __name__ == '__main__':`."
            )
        if not self.calls:
            return (
                f"Expected a call of {name} to return within timeout={t:g} s but the first call did "
                f"not return (the call phase): an infinite loop, or a loss far slower than a "
                f"training step? Try --timeout with a larger value."
            )
        calls = sorted(self.calls)
        median = calls[len(calls) // 2]
        return (
            f"Expected the probe of {name} to finish within timeout={t:g} s but it did not (the call "
            f"phase): {len(calls)} calls of the loss were made, each took {median:.3g} s (median; "
            f"{calls[0]:.3g} to {calls[-1]:.3g} s), and a probe needs 40 to 80 of them (fewer for a "
            f"slow loss). Try --timeout {max(2 * t, math.ceil(90 * median)):g}."
        )


def _run_worker(request: CheckRequest, timeout: float, isolate: bool) -> CheckAnswer | CheckFailure:
    if isolate:
        return _Worker(request, timeout).run()
    from vaeloss.check.worker import Channel, run

    return run(replace(request, writable=(tempfile.gettempdir(),)), Channel(None))


def _refuse_inline_statically(static: StaticSource, names: list[str], args: dict[str, object]) -> None:
    """Before any worker starts: the one loss computed inline that adds terms made elsewhere
    (``loss = loss_dict['loss']``), or that needs values not given (``--arg c=VALUE``)."""
    inline = _inline_of(static, names)
    if len(inline) != len(names) or len(inline) != 1:
        return
    found = inline[0]
    terms = [p for p in found.params if "loss" in p.lower()]
    if terms:
        made = [f"{p} at line {line} (`{code}`)" for p, line, code in found.bound_by if p in terms]
        raise LossCheckError(
            f"Expected a loss of the model's tensors but {found.describe()}, takes its terms from "
            f"statements before it: {'; '.join(made) or ', '.join(terms)}. Try 'vaeloss check "
            f"{static.source.path}:NAME' with the function that computes them."
        )
    missing = [v for v in found.values if v not in args]
    if missing:
        hint = " ".join(f"--arg {m}=VALUE" for m in missing)
        raise LossCheckError(
            f"Expected values for the required argument(s) {', '.join(missing)} of {found.describe()} "
            f"but got none. Try {hint}."
        )


def _addressed(other: CandidateSummary, static: StaticSource) -> CandidateSummary:
    """A candidate as the user can name it: a loss computed inline by its first line."""
    found = static.inline.get(other.name)
    if found is None:
        return other
    return replace(other, name=str(found.lines[0]), described=found.describe())


def _inline_of(static: StaticSource, names: list[str]) -> list[InlineLoss]:
    return [static.inline[n] for n in names if n in static.inline]


def _failure_with_hints(
    answer: CheckFailure, shown: str, static: StaticSource, names: list[str], D: int
) -> LossCheckError:
    """The error of a failed check, with a hint when the file hard-codes 784 and D is not, or
    when a loss computed inline takes nothing a VAE loss takes."""
    inline = _inline_of(static, names)
    if (
        len(inline) == len(names) == 1
        and "no way to pass" in answer.error
        and not inline[0].reads_a_posterior()
    ):
        found = inline[0]
        return NoLossError(
            f"Expected a VAE loss but {found.describe()}, is none: it reads {', '.join(found.params)}, "
            "and no posterior mean and (log-)variance (a classifier's or a GAN's loss?). Try "
            f"'vaeloss check {static.source.path}:NAME' with the function that computes your VAE loss."
        )
    error = _failure(answer, shown, static)
    tried = [n for n in names if n not in static.inline] or names  # a function, before the loop's use of it
    fixed = static.lines_for(tried[0]).get("hard_coded_784") if len(tried) == 1 else None
    if fixed and D != 784:
        return LossCheckError(
            f"{error}\nThe file hard-codes 784 ({static.source.where(fixed[0])}): try --data-dim 784, "
            f"or use x.view(x.shape[0], -1) instead of a fixed size."
        )
    return error


def _failure(answer: CheckFailure, target: str, static: StaticSource) -> LossCheckError:
    error = answer.error
    if "No module named" in error:
        for framework in _MISSING_FRAMEWORKS:
            if f"'{framework}" in error and static.imports(framework):
                error += (
                    f"\nThe file imports {framework}, which is not installed where vaeloss runs; the "
                    f"loss needs it. Install it (pip install {framework.replace('_', '-')}), or install "
                    f"vaeloss into the project's environment."
                )
                break
    if answer.phase == "internal":  # vaeloss's own code failed in the worker: a bug (exit 3)
        raise RuntimeError(f"the check of {target} failed in vaeloss's worker: {error}")
    if answer.phase == "resolve":
        return LossCheckError(error)
    what = {"import": "loading the file", "call": "calling the loss"}
    during = what.get(answer.phase, "the check")
    return LossCheckError(
        f"Expected a loss that can be probed but {target} could not be checked ({during}): {error}"
    )


def _ran(observed: Observation | None) -> str:
    """What a run of the file did, for an error (run mode): where it stopped, or why not."""
    ran = None if observed is None else observed.summary()
    return "" if ran is None else f"\nRan {ran}."


def _refusal(
    answer: CheckFailure,
    resolved: Target,
    static: StaticSource,
    names: list[str],
    D: int,
    no_loss: NoLossError | None,
) -> LossCheckError:
    """The error of a check that failed, saying what a run of the file did."""
    if no_loss is not None:
        seen = answer.observed
        failure = f" Running it did not show one either: {seen.failure}" if seen and seen.failure else ""
        return NoLossError(f"{no_loss}{failure}")
    shown = f"{resolved.path}:{resolved.name}" if resolved.name else str(resolved.path)
    error = _failure_with_hints(answer, shown, static, names, D)
    return type(error)(f"{error}{_ran(answer.observed)}")


def _sizes(
    batch_size: int, data_dim: int | None, latent_dim: int, input_shape: tuple[int, ...] | None
) -> dict[str, int]:
    """B, D and k of a check, checked (D from ``input_shape`` when given)."""
    B = check_positive_int("batch_size", batch_size, example=128)
    k = check_positive_int("latent_dim", latent_dim, example=20)
    if input_shape is None:
        D = check_positive_int("data_dim", data_dim if data_dim is not None else 784, example=784)
        return {"B": B, "D": D, "k": k}
    for n in input_shape:
        check_positive_int("input_shape", n, example=28)
    D = math.prod(input_shape)
    if data_dim is not None and data_dim != D:
        raise LossCheckError(
            f"Expected --data-dim to equal the product of --input-shape but got "
            f"data_dim={data_dim}, input_shape={','.join(map(str, input_shape))}. "
            f"Try leaving out --data-dim."
        )
    return {"B": B, "D": D, "k": k}


def _request(
    resolved: Target, static: StaticSource, framework: FrameworkUse, names: list[str], mode: Mode
) -> CheckRequest:
    """The worker's request for the file: how to import it, its framework, the names to try and
    the sources of those computed inline or nested (every nested function for a run, which may
    show any of them), with the check's settings at their defaults (set by the caller)."""
    nested = names if mode == "call" else [*names, *static.nested_names()]
    return CheckRequest(
        path=str(resolved.path),
        module=resolved.module,
        search_path=tuple(resolved.search_path),
        names=tuple(names),
        explicit=False,
        args={},
        init={},
        sizes={},
        input_shape=None,
        timeout=DEFAULT_TIMEOUT,
        exec_module=False,
        framework=framework.name,
        arrays=framework.arrays,
        keras_backend=framework.keras_backend,
        keras2=keras2_names(static.tree),
        inline=tuple((i.name, i.source, i.describe()) for i in _inline_of(static, names)),
        nested=tuple((n, src) for n in dict.fromkeys(nested) if (src := static.nested_source(n))),
        mode=mode,
    )


def _select(
    static: StaticSource, name: str | None, mode: str
) -> tuple[list[str], str, bool, NoLossError | None]:
    """:func:`~vaeloss.check.source.select`; in run mode, a file without a candidate of its own
    is still run (its loss may be a trainer module's): no names, and the error kept for later."""
    try:
        names, why, explicit = select(static, name)
    except NoLossError as exc:
        if mode == "call":
            raise
        return [], "", False, exc
    return names, why, explicit, None


def _chosen(
    answer: CheckAnswer, path: Path, name: str | None, static: StaticSource, why: str
) -> tuple[StaticSource, str, str]:
    """The file the checked loss is in (a module of the folder that a run imported, or the
    checked file), its path, and why that loss."""
    seen = answer.observed
    if not name and seen is not None and seen.function and qualified(seen.function) == answer.name:
        why = f"{answer.name!r}: it returned the loss your step differentiates ({seen.stopped_at})"
        if seen.function_file is not None:
            why += f", running {path.name}"
            return read_static(read_source_file(Path(seen.function_file))), seen.function_file, why
        return static, str(path), why
    if not why:
        chosen = static.inline[answer.name].describe() if answer.name in static.inline else repr(answer.name)
        why = f"{chosen}: " + (
            "the first candidate that probes as a whole VAE loss"
            if any(o.whole for o in answer.others)
            else "the one candidate that probes as a whole VAE loss"
        )
    return static, str(path), why


def check_loss(
    target: str,
    *,
    batch_size: int | None = None,
    data_dim: int | None = None,
    latent_dim: int | None = None,
    input_shape: tuple[int, ...] | None = None,
    args: dict[str, object] | None = None,
    init: dict[str, object] | None = None,
    expect_beta: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    exec_module: bool = False,
    taps: dict[str, str] | None = None,
    isolate: bool = True,
    mode: str = "auto",
    script_args: tuple[str, ...] = (),
) -> CheckReport:
    """Check the loss ``TARGET`` (``PATH[:NAME]`` or ``pkg.module[:NAME]``) and report.

    The file is loaded in a separate Python process without being run as a script (see
    :mod:`vaeloss.usercode.loader`), with ``timeout`` seconds for the user's code (the loading
    and the calls of the loss); ``isolate=False`` runs it in this process instead (no time
    limit; for tests). ``args`` are values for the loss's own arguments, ``init`` for its
    class's or factory's constructor; each a value, or text read as a literal, else an
    expression in the module. A loss computed inside a model (a training step, ``forward``
    returning the loss) is probed through the model; ``taps`` names its submodules
    ``{"mu": ..., "scale": ..., "recon": ...}`` when they cannot be told by name and shape.
    ``mode`` (:mod:`vaeloss.check.observe.mode`): ``run`` runs the file up to its first
    differentiation and probes the loss it returned at the sizes the step ran at (B, D, k not
    given); ``call`` calls the candidates at the given sizes (else 128, the loss's D or 784,
    20); ``auto`` runs a PyTorch training loop whose loss is not named. ``script_args`` are
    the file's own command-line arguments, for its argparse (else its defaults).

    Raises:
        LossCheckError: the loss cannot be checked (no candidate, crashes, never returns,
            returns a non-tensor or NaN).
        UserCodeError: the file cannot be read (missing, not text, a broken notebook).
    """
    given = tuple(n for n, v in (("B", batch_size), ("D", data_dim or input_shape), ("k", latent_dim)) if v)
    sizes = _sizes(batch_size or DEFAULT_BATCH_SIZE, data_dim, latent_dim or DEFAULT_LATENT_DIM, input_shape)
    check_positive("timeout", timeout)
    resolved = resolve_target(target)
    static = read_static(read_source_file(resolved.path))
    framework = detect_framework(static.source, static.tree)
    require_framework(framework, static.source)
    chosen_mode = choose_mode(
        mode, static.tree, framework.name, named=resolved.name is not None, folder=resolved.path.parent
    )
    names, why, explicit, no_loss = _select(static, resolved.name, chosen_mode)
    if chosen_mode == "call":
        _refuse_inline_statically(static, names, args or {})
    request = replace(
        _request(resolved, static, framework, names, chosen_mode),
        explicit=explicit,
        args={n: _text(v) for n, v in (args or {}).items()},
        init={n: _text(v) for n, v in (init or {}).items()},
        sizes=sizes,
        input_shape=input_shape,
        timeout=timeout,
        exec_module=exec_module,
        taps=TapNames(**(taps or {})),
        given=given,
        script_args=tuple(script_args),
    )
    answer = _run_worker(request, timeout, isolate)
    if isinstance(answer, CheckFailure):
        raise _refusal(answer, resolved, static, names, sizes["D"], no_loss)
    answer = replace(answer, others=tuple(_addressed(o, static) for o in answer.others))
    static, path, why = _chosen(answer, resolved.path, resolved.name, static, why)
    return build_report(
        answer,
        static.lines_for(answer.name),
        path=path,
        why=why,
        expect_beta=expect_beta,
        where=static.source.where,
        framework=framework.describe(),
        given_sizes=given,
    )


def build_report(
    answer: CheckAnswer,
    lines: dict[str, list[int]],
    *,
    path: str,
    why: str,
    expect_beta: float | None,
    where: Callable[[int | None], str | None],
    framework: str = "torch",
    given_sizes: tuple[str, ...] = (),
) -> CheckReport:
    """The report of a probe: factors as monomials, the KL-weight parameter, findings, fix."""
    probe, sizes = answer.probe, answer.sizes
    rfit, kfit = probe.recon_fit, probe.kl_fit
    rtol = max(rfit.tolerance, kfit.tolerance)
    recon_ok, kl_ok = rfit.recon_ok, kfit.kl_ok
    recon_factor, fixed_r = fit_monomial(rfit.a, probe.sizes, "a", sizes, rtol) if recon_ok else (None, ())
    kl_factor, fixed_k = fit_monomial(kfit.b, probe.sizes, "b", sizes, rtol) if kl_ok else (None, ())
    weight_param = None
    for pname, eff in probe.weight_effects.items():
        if not kl_ok or kfit.b == 0 or not rfit.a:
            break
        target = 2.0 if eff["value"] else math.nan
        if abs(eff["b"] / kfit.b - target) < rtol and abs(eff["a"] / rfit.a - 1) < rtol:
            weight_param = pname
    report = CheckReport(
        function=answer.name,
        path=path,
        selected_because=why,
        described=answer.described,
        sizes=sizes,
        probe=probe,
        recon_factor=recon_factor,
        kl_factor=kl_factor,
        fixed_dims=tuple(sorted(set(fixed_r) | set(fixed_k))),
        defaults=answer.defaults,
        kl_weight_parameter=weight_param,
        others=answer.others,
        skipped=answer.skipped,
        where=where,
        through_model=answer.model,
        framework=framework,
        supplied=answer.supplied,
        observed=answer.observed,
        given_sizes=given_sizes,
    )
    report.findings = build_findings(report, Context(lines, expect_beta, where))
    report.fix = build_fix(report)
    return report
