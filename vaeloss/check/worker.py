"""Worker process of ``vaeloss check``: loads the user's file and probes one loss.

Run as ``python -m vaeloss.check.worker FD`` with the request on stdin. Messages go to the file
descriptor FD, one line each (:mod:`vaeloss.check.protocol`), so that the user's own prints
cannot mix with them: :class:`~vaeloss.check.protocol.PhaseStarted` ``import`` when loading the
user's file starts and ``call`` when it is loaded and the probing starts,
:class:`~vaeloss.check.protocol.CallStarted` and
:class:`~vaeloss.check.protocol.CallFinished` around each call of the user's code, and at the
end a :class:`~vaeloss.check.protocol.CheckAnswer` or
:class:`~vaeloss.check.protocol.CheckFailure`. The CLI process enforces ``--timeout`` on the
time spent in the user's code: the loading, and the calls (:mod:`vaeloss.check.runner`).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaeloss.check.observe.apply import observed_sizes
from vaeloss.check.observe.declared import with_declared
from vaeloss.check.protocol import (
    CallFinished,
    CallStarted,
    CandidateKind,
    CandidateSummary,
    CheckAnswer,
    CheckFailure,
    CheckRequest,
    FailurePhase,
    Message,
    PhaseStarted,
    Plain,
    ThroughModel,
    decode_request,
    encode,
)

if TYPE_CHECKING:
    from vaeloss.check.forms import CallForm
    from vaeloss.check.objects import LossObject
    from vaeloss.check.observe.result import Observation
    from vaeloss.check.observe.torch_step import Live
    from vaeloss.check.probe.backend import Backend
    from vaeloss.usercode.loader import Loaded

__all__ = ["Channel", "run"]


class Channel:
    """Where the worker's messages go: the pipe to the CLI process, or a list (in-process)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.messages: list[Message] = []

    def send(self, message: Message) -> None:
        if self.fd is None:
            self.messages.append(message)
            return
        os.write(self.fd, encode(message))

    def started(self) -> None:
        """A call of the user's code starts (a :class:`~vaeloss.check.probe.CallWatch`)."""
        self.send(CallStarted())

    def finished(self, seconds: float) -> None:
        self.send(CallFinished(seconds))


@dataclass
class _Candidate:
    """A name of the file resolved into something to call, with its call forms."""

    name: str
    obj: LossObject
    forms: list[CallForm]


def _hint(error: str) -> str:
    missing = re.search(r"KeyError: '(\w+)'", error)
    if missing:
        error += (
            f"\nThe function reads a keyword argument {missing.group(1)!r} it was not given. "
            f"Try --arg {missing.group(1)}=VALUE."
        )
    return error


def _values(texts: dict[str, str], namespace: dict[str, object]) -> dict[str, object]:
    from vaeloss.usercode.construct import evaluate_value

    return {name: evaluate_value(text, namespace) for name, text in texts.items()}


def _summary(reading: Any) -> CandidateKind:
    fits = reading.fits
    if reading.total is not None and fits[reading.total].a and fits[reading.total].b:
        return "full loss"
    if reading.components is not None:
        return "terms apart"
    if any(f.a for f in fits) and not any(f.b for f in fits):
        return "reconstruction only"
    if any(f.b for f in fits) and not any(f.a for f in fits):
        return "KL only"
    return "neither"


def _load(request: CheckRequest) -> Loaded | CheckFailure:
    """The user's file, loaded by the rules of :mod:`vaeloss.usercode.loader`."""
    from vaeloss.usercode.loader import load_module

    path = Path(request.path)
    try:
        return load_module(
            path,
            request.module,
            request.search_path,
            exec_module=request.exec_module,
            argv=request.script_args,
        )
    except SystemExit as exc:
        return CheckFailure(f"importing {path.name} called sys.exit({exc.code!r})", "import")
    except BaseException as exc:  # noqa: BLE001 - with --exec-module, any import failure
        return CheckFailure(f"importing {path.name} raised {type(exc).__name__}: {exc}", "import")


def _candidates(
    request: CheckRequest,
    loaded: Loaded,
    init: dict[str, object],
    extra: dict[str, object],
    live: LossObject | None = None,
) -> list[_Candidate] | CheckFailure:
    """The names of the request that resolve into something the probe can call (``live``: the
    loss as a run left it, for the request's one name)."""
    from vaeloss.check.forms import call_forms, missing_arguments, params_of
    from vaeloss.check.model_probe import model_of
    from vaeloss.check.objects import ObjectError, resolve_object

    found: list[_Candidate] = []
    problems: list[str] = []
    inline = {n: what for n, _, what in request.inline}
    sources = {n: src for n, src, _ in request.inline}
    for name in request.names:
        try:
            obj = live if live is not None else resolve_object(loaded, name, init)
        except ObjectError as exc:
            problems.append(str(exc) if request.explicit else f"{inline.get(name, name)}: {exc}")
            continue
        if name in inline:
            obj = replace(obj, described=inline[name] + _inline_reads(obj, name, sources[name], init))
        params = params_of(obj.function or obj.call, obj.call, set(extra))
        forms = call_forms(params)
        missing = missing_arguments(params)
        if missing and not (not forms and model_of(obj) is not None):
            hint = " ".join(f"--arg {m}=VALUE" for m in missing)
            problems.append(
                f"Expected values for the required argument(s) {', '.join(missing)} of "
                f"{inline.get(name, name)} but got none. Try {hint}."
            )
            continue
        found.append(_Candidate(name, obj, forms))
    if not found:
        return CheckFailure("; ".join(problems) or "nothing to check", "resolve")
    return found


def _screen(
    request: CheckRequest, c: _Candidate, extra: dict[str, object], channel: Channel, backend: Backend
) -> CandidateSummary:
    """What one candidate probes as, with the fewest calls."""
    from vaeloss.check.objects import StateGuard
    from vaeloss.check.probe import Plan, function_callers, search

    try:
        callers = function_callers(
            c.obj,
            c.forms,
            extra,
            D=request.sizes["D"],
            input_shape=request.input_shape,
            guard=StateGuard(c.obj.instance),
            timings=[],
            watch=channel,
            backend=backend,
        )
        _, reading = search(callers, B=request.sizes["B"], k=request.sizes["k"], plan=Plan.reduced())
    except Exception as exc:  # noqa: BLE001 - a candidate that cannot be probed
        return CandidateSummary(c.name, "unprobed", type(exc).__name__)
    return CandidateSummary(c.name, _summary(reading))


def _choose(
    request: CheckRequest,
    found: list[_Candidate],
    extra: dict[str, object],
    channel: Channel,
    backend: Backend,
) -> tuple[_Candidate, tuple[CandidateSummary, ...]]:
    """The candidate to probe (the first that is a whole VAE loss) and what the others are."""
    if request.explicit or len(found) == 1:
        return found[0], ()
    summaries = [_screen(request, c, extra, channel, backend) for c in found]
    pick = next((i for i, s in enumerate(summaries) if s.whole), 0)
    return found[pick], tuple(s for i, s in enumerate(summaries) if i != pick)


def _plain(value: Any) -> Plain:
    """A value as JSON can carry it: numbers, text and booleans as they are, else its repr."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else repr(value)


_SCALE_NAMES = (
    "log_scale",
    "logscale",
    "log_sigma",
    "logsigma",
    "log_std",
    "log_var_x",
    "logvar_x",
    "x_logvar",
    "x_log_var",
    "log_var",
    "logvar",
)


def _log_scales(model: Any) -> dict[str, float]:
    """Learned decoder scales of a model (parameters named like log_scale, log_sigma), by name:
    their mean value (a log standard deviation or log variance, as named)."""
    return {
        pname: float(p.detach().double().mean())
        for pname, p in model.named_parameters()
        if pname.rsplit(".", 1)[-1].lower() in _SCALE_NAMES and p.numel() <= 4096
    }


def _numeric_defaults(call: Any, given: set[str]) -> dict[str, Plain]:
    """The loss's own arguments with numeric defaults (candidates for its KL weight)."""
    import inspect

    try:
        params = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in params
        if p.name not in given and isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
    }


def _explain(message: str, loaded: Loaded) -> str:
    """Add why a name the loss needs is missing (a skipped statement) to an error."""
    missing = re.search(r"NameError: name '(\w+)' is not defined", message)
    if missing:
        why = loaded.explain_name(missing.group(1))
        if why:
            message += f"\n{why}."
    return message


def _probe(
    request: CheckRequest,
    chosen: _Candidate,
    extra: dict[str, object],
    channel: Channel,
    budget: float,
    backend: Backend,
) -> tuple[Any, dict[str, int], ThroughModel | None]:
    """Probe the chosen loss (through its model when it is a model's method taking a batch):
    the probe's result, the sizes it ran at, and how the model was probed."""
    from vaeloss.check.model_layers import is_keras
    from vaeloss.check.model_probe import WrongBackend, model_callers, model_of, owner_of
    from vaeloss.check.objects import StateGuard
    from vaeloss.check.probe import Plan, function_callers, probe

    obj, forms = chosen.obj, chosen.forms
    B, D, k = request.sizes["B"], request.sizes["D"], request.sizes["k"]
    weights = {
        n: float(v)
        for n, v in {**_numeric_defaults(obj.call, set(extra)), **extra}.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    model = model_of(obj) if not forms else None
    owner = owner_of(obj)
    if model is None and not forms and is_keras(owner):
        raise WrongBackend(
            f"Expected Keras's torch backend to probe {obj.name} through {type(owner).__name__}'s layers "
            f"(forward hooks replace their outputs) but got "
            f"KERAS_BACKEND={sys.modules['keras'].backend.backend()}. "
            f"Try 'KERAS_BACKEND=torch vaeloss check {request.path}'."
        )
    if model is None:

        def make(guard: Any, timings: list[float]) -> Any:
            return function_callers(
                obj,
                forms,
                extra,
                D=D,
                input_shape=request.input_shape,
                guard=guard,
                timings=timings,
                watch=channel,
                backend=backend,
            )

        return (
            probe(obj, make, weights, B=B, D=D, k=k, plan=Plan(), budget=budget),
            {"B": B, "D": D, "k": k},
            None,
        )
    t = request.taps
    callers, taps, shape = model_callers(
        obj,
        model,
        extra,
        B=B,
        input_shape=request.input_shape,
        names={"mu": t.mu, "scale": t.scale, "recon": t.recon},
        guard=StateGuard(obj.instance),
        timings=[],
        watch=channel,
        backend=backend,
    )
    D, k = math.prod(shape), taps.k
    result = probe(obj, lambda guard, timings: callers, weights, B=B, D=D, k=k, plan=Plan(), budget=budget)
    through = ThroughModel(taps.mu, taps.scale, taps.recon, tuple(shape), _log_scales(model), taps.draws)
    return result, {"B": B, "D": D, "k": k}, through


def _probed(
    request: CheckRequest,
    chosen: _Candidate,
    extra: dict[str, object],
    loaded: Loaded,
    channel: Channel,
    budget: float,
    backend: Backend,
) -> tuple[Any, dict[str, int], ThroughModel | None] | CheckFailure:
    """:func:`_probe`, with the user's code's failures as a :class:`CheckFailure`."""
    from vaeloss.check.model_probe import ModelError, WrongBackend
    from vaeloss.check.probe import ProbeFailure, ReturnValueError

    try:
        return _probe(request, chosen, extra, channel, budget, backend)
    except WrongBackend as exc:
        return CheckFailure(str(exc), "call")
    except ModelError as exc:
        return CheckFailure(
            f"Expected a model whose posterior and decoder outputs can be found but {exc}", "call"
        )
    except (ProbeFailure, ReturnValueError) as exc:
        return CheckFailure(_explain(_which(str(exc), chosen), loaded), "call")
    except SystemExit as exc:
        return CheckFailure(f"calling {chosen.name} called sys.exit({exc.code!r})", "call")
    except Exception as exc:  # noqa: BLE001 - the user's code
        return CheckFailure(
            _explain(f"calling {chosen.name} raised {type(exc).__name__}: {exc}", loaded), "call"
        )


def _which(error: str, chosen: _Candidate) -> str:
    """A "no way to pass" error naming the function tried and its parameters."""
    import inspect

    from vaeloss.check.inline import inline_words

    if not error.startswith("no way to pass"):
        return error
    call = chosen.obj.function or chosen.obj.call
    try:
        params = ", ".join(inspect.signature(call).parameters)
    except (TypeError, ValueError):
        return error
    return f"{error} ({params}) of {inline_words(chosen.name)}"


def _inline_reads(obj: LossObject, name: str, source: str, init: dict[str, object]) -> str:
    """For a loss computed inline: the instance it ran on (a method's) and the plain values it
    read from it and from the module (``, reading self.beta=1.0, args.kl_weight=0.5``)."""
    import argparse
    import ast

    namespace = getattr(obj.function or obj.call, "__globals__", {})
    tree = ast.parse(source)
    instance = obj.instance if name.rpartition(".")[0] else None
    read: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = instance if node.value.id == "self" else namespace.get(node.value.id)
            if owner is not None and (node.value.id == "self" or isinstance(owner, argparse.Namespace)):
                value = getattr(owner, node.attr, None)
                read += [f"{node.value.id}.{node.attr}={value!r}"] if _is_plain(value) else []
        elif (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and _is_plain(namespace.get(node.id))
        ):
            read.append(f"{node.id}={namespace[node.id]!r}")
    reading = f", reading {', '.join(sorted(set(read)))}" if read else ""
    if instance is None:
        return reading
    from vaeloss.check.objects import construction

    built = construction(name.rpartition(".")[0], init)
    return f", on {built} as built by vaeloss{reading} (--init NAME=VALUE to build it otherwise)"


def _is_plain(value: object) -> bool:
    return isinstance(value, (int, float, str, bool))


def _add_inline(request: CheckRequest, namespace: dict[str, Any]) -> None:
    """The losses computed inline, as functions of the loaded module (reading its globals),
    their source readable by ``inspect`` (:mod:`vaeloss.check.inline`)."""
    import linecache

    for name, source, _ in request.inline:
        filename = f"<vaeloss: {name} of {Path(request.path).name}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        cls, _, short = name.rpartition(".")
        local: dict[str, Any] = {}
        exec(compile(source, filename, "exec"), namespace, local)
        function = local[short]
        if cls and cls in namespace:
            setattr(namespace[cls], short, function)  # a method: reads self.beta
        else:
            namespace[short] = function


def _set_attributes(
    settings: dict[str, object], namespace: dict[str, Any], request: CheckRequest
) -> CheckFailure | None:
    """``--arg args.kl_weight=0.5``: set the attribute of the module-level object (argparse's
    namespace the loss reads), or the failure naming what is missing."""
    for name, value in settings.items():
        head, *middle, last = name.split(".")
        owner = namespace.get(head)
        for part in middle:
            owner = getattr(owner, part, None)
        if owner is None or head not in namespace:
            return CheckFailure(
                f"Expected a module-level object to set --arg {name}= on but got {head!r}, which "
                f"{Path(request.path).name} does not define at its top level after loading. Try "
                f"--arg NAME=VALUE with an argument of the loss itself.",
                "resolve",
            )
        setattr(owner, last, value)
    return None


def _add_nested(request: CheckRequest, namespace: dict[str, Any]) -> None:
    """The functions defined inside a top-level function that the request names
    (``main.loss_fn``), defined over a copy of the module's globals (with the argparse defaults
    it reads from ``main(args)``; another name of the outer function's own is missing, and said
    so when the call needs it) and set as an attribute of that function, where
    :func:`~vaeloss.check.objects.resolve_object` finds it."""
    import linecache

    from vaeloss.usercode import sandbox
    from vaeloss.usercode.loader import argparse_defaults

    for name, source in request.nested:
        outer, _, short = name.partition(".")
        filename = f"<vaeloss: {name} of {Path(request.path).name}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        scope = dict(namespace)  # its own globals: the argparse values it reads from main(args)
        try:
            with sandbox.enforced(), argparse_defaults():  # a required argument gets its default
                exec(compile(source, filename, "exec"), scope)
        except Exception:  # noqa: BLE001 - not defined: resolving the name says it is missing
            continue
        if outer in namespace and short in scope:
            setattr(namespace[outer], short, scope[short])


def _prepare_framework(request: CheckRequest) -> tuple[Backend, tuple[str, ...]]:
    """Import the file's framework before its code runs (Keras on the backend it runs on; the
    Keras 2 names the file uses supplied): the probe's backend, and what was supplied."""
    from vaeloss.check.probe.backends import backend_for

    supplied: tuple[str, ...] = ()
    if request.keras_backend is not None:
        os.environ["KERAS_BACKEND"] = request.keras_backend
    if request.framework == "keras" or request.keras2:
        from vaeloss.usercode.keras2 import supply_keras2

        supplied = supply_keras2(request.keras2)
    return backend_for(request.arrays, request.framework), supplied


def run(request: CheckRequest, channel: Channel) -> CheckAnswer | CheckFailure:
    """Load the file (in run mode, first run it up to its first differentiation), resolve and
    probe the loss; the answer. A move to an absent GPU stays on the CPU throughout."""
    from vaeloss.check.observe.substitutes import Replacements, cpu_only

    with cpu_only(Replacements()):
        return _run(request, channel)


def _run(request: CheckRequest, channel: Channel) -> CheckAnswer | CheckFailure:
    from vaeloss.usercode import sandbox

    backend, supplied = _prepare_framework(request)  # start-up: not the user's code
    sandbox.install([Path(p) for p in request.writable])
    started = time.time()
    observed, live = _observe(request, channel)
    channel.send(PhaseStarted("import"))
    loaded = _load(request)
    if isinstance(loaded, CheckFailure):
        return replace(loaded, observed=observed)
    skipped = tuple(loaded.skipped)
    namespace = vars(loaded.module)
    _add_inline(request, namespace)
    _add_nested(request, namespace)
    init, given = _values(request.init, namespace), _values(request.args, namespace)
    chosen_live = None
    if observed is not None:
        from vaeloss.check.observe.apply import decide
        from vaeloss.check.observe.torch_step import qualified

        decision = decide(request, observed, live, loaded, init)
        request, loaded, chosen_live = decision.request, decision.loaded, decision.live
        if observed.function and request.names == (qualified(observed.function),):
            given = {**observed.arguments, **given}  # the numbers the step passed, unless --arg
    extra = {n: v for n, v in given.items() if "." not in n}
    unset = _set_attributes({n: v for n, v in given.items() if "." in n}, namespace, request)
    if unset is not None:
        return replace(unset, skipped=tuple(loaded.skipped))
    loaded_in = time.time() - started
    channel.send(PhaseStarted("call"))
    with sandbox.enforced():
        found = _candidates(request, loaded, init, extra, chosen_live)
        if isinstance(found, CheckFailure):
            return replace(found, skipped=skipped, observed=observed)
        chosen, others = _choose(request, found, extra, channel, backend)
        declared = with_declared(observed, chosen.obj.function, chosen.name, loaded.source)
        if declared is not None and declared is not observed:  # sizes the file declares (no run showed)
            observed = declared
            request = replace(request, sizes=observed_sizes(request.sizes, declared, request.given))
        first = time.perf_counter()
        probed = _probed(request, chosen, extra, loaded, channel, request.timeout - loaded_in, backend)
    if isinstance(probed, CheckFailure):
        return replace(probed, skipped=skipped, observed=observed)
    result, sizes, through = probed
    return CheckAnswer(
        name=chosen.name,
        described=chosen.obj.described,
        others=others,
        probe=result,
        skipped=skipped,
        init={k_: _plain(v) for k_, v in init.items()},
        defaults={
            **_numeric_defaults(chosen.obj.call, set(extra)),
            **{k_: _plain(v) for k_, v in given.items()},
        },
        seconds=time.perf_counter() - first,
        sizes=sizes,
        model=through,
        framework=request.framework,
        supplied=supplied,
        observed=observed,
    )


def _observe(request: CheckRequest, channel: Channel) -> tuple[Observation | None, Live | None]:
    """In run mode, the run of the user's step (:mod:`vaeloss.check.observe`) and the loss as
    it left it, else None."""
    if request.mode != "run":
        return None, None
    from vaeloss.check.observe.apply import observe

    channel.send(PhaseStarted("observe"))
    return observe(request)


def _failure(phase: FailurePhase, error: str) -> CheckFailure:
    return CheckFailure(error, phase)


def main() -> None:
    fd = int(sys.argv[1])
    request = decode_request(json.loads(sys.stdin.read()))
    channel = Channel(fd)
    channel.send(PhaseStarted("start"))
    import torch  # start-up, before the clock of --timeout starts

    torch.set_num_threads(1)  # a probe's tensors are small: one thread never waits for a core
    answer: CheckAnswer | CheckFailure
    try:
        answer = run(request, channel)
    except BaseException as exc:  # noqa: BLE001 - an internal error, reported as such
        answer = _failure("internal", f"{type(exc).__name__}: {exc}")
    if isinstance(answer, CheckFailure):
        answer = replace(answer, error=_hint(answer.error))
    channel.send(answer)
    sys.stdout.flush()
    os._exit(0)  # no interpreter shutdown: the user's objects may not finalise cleanly


if __name__ == "__main__":
    main()
