"""The check's process boundary, typed: the request the CLI process sends to the worker, and the
messages the worker sends back (its phases, each call of the user's code, the answer), each a
frozen dataclass, serialised as one JSON line in one place (:func:`encode`, :func:`decode`).

>>> decode(encode(CallFinished(0.25)))
CallFinished(seconds=0.25)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

from vaeloss.check.observe.result import Observation
from vaeloss.check.result import CandidateKind, CandidateSummary, Plain, ProbeResult, ThroughModel
from vaeloss.jsontypes import Json, JsonObject
from vaeloss.usercode.loader import Skipped

__all__ = [
    "CallFinished",
    "CallStarted",
    "CandidateKind",
    "CandidateSummary",
    "CheckAnswer",
    "CheckFailure",
    "CheckRequest",
    "FailurePhase",
    "Message",
    "PhaseStarted",
    "Plain",
    "TapNames",
    "ThroughModel",
    "decode",
    "encode",
]

FailurePhase = Literal["import", "resolve", "call", "internal"]


@dataclass(frozen=True)
class TapNames:
    """The submodules a user named for a loss computed inside a model (``--mu`` ...)."""

    mu: str | None = None
    scale: str | None = None
    recon: str | None = None


@dataclass(frozen=True)
class CheckRequest:
    """What the worker checks: the file and how to import it, the candidate names, the values
    of ``--arg``/``--init`` (as text), the sizes, and the limits.

    Attributes:
        explicit: the user named the target (``FILE:NAME``): no candidate search.
        sizes: ``{"B": ..., "D": ..., "k": ...}``.
        writable: folders the checked code may write to (the worker's private temporary one).
        framework, arrays, keras_backend: the file's framework, the arrays its loss takes
            and the backend Keras runs on (:class:`~vaeloss.usercode.frameworks.FrameworkUse`).
        keras2: the Keras 2 ``keras.backend`` names the file uses
            (:func:`~vaeloss.usercode.keras2.keras2_names`).
        inline: losses computed inline, as functions to add to the loaded module: (name,
            Python source, description) (:mod:`vaeloss.check.inline`).
        nested: functions defined inside a top-level function (``main.loss_fn``), to define at
            the module's level as attributes of it: (name, Python source at its own lines).
        mode: ``run`` runs the file up to its first differentiation first
            (:mod:`vaeloss.check.observe`) and probes the loss it returned at the sizes it ran at;
            ``call`` calls the candidates at ``sizes``.
        given: the sizes the user gave (``B``, ``D``, ``k``): a run does not change them.
        script_args: the script's own arguments (``vaeloss check FILE -- ARGS``), for its argparse.
    """

    path: str
    module: str
    search_path: tuple[str, ...]
    names: tuple[str, ...]
    explicit: bool
    args: dict[str, str]
    init: dict[str, str]
    sizes: dict[str, int]
    input_shape: tuple[int, ...] | None
    timeout: float
    exec_module: bool
    taps: TapNames = field(default_factory=TapNames)
    writable: tuple[str, ...] = ()
    framework: str = "torch"
    arrays: str = "torch"
    keras_backend: str | None = None
    keras2: tuple[str, ...] = ()
    inline: tuple[tuple[str, str, str], ...] = ()
    nested: tuple[tuple[str, str], ...] = ()
    mode: Literal["run", "call"] = "call"
    given: tuple[str, ...] = ()
    script_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhaseStarted:
    """The worker entered a phase: ``start`` (Python and torch starting), ``observe`` (running
    the user's step: the user's code), ``import`` (loading the user's file: the user's code),
    ``call`` (probing)."""

    phase: Literal["start", "observe", "import", "call"]


@dataclass(frozen=True)
class CallStarted:
    """A call of the user's code starts."""


@dataclass(frozen=True)
class CallFinished:
    """A call of the user's code returned (or raised) after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class CheckAnswer:
    """The worker's answer when the loss could be probed."""

    name: str
    described: str
    others: tuple[CandidateSummary, ...]
    probe: ProbeResult
    skipped: tuple[Skipped, ...]
    init: dict[str, Plain]
    defaults: dict[str, Plain]
    seconds: float
    sizes: dict[str, int]
    model: ThroughModel | None = None
    framework: str = "torch"
    supplied: tuple[str, ...] = ()
    observed: Observation | None = None


@dataclass(frozen=True)
class CheckFailure:
    """The worker's answer when the loss could not be checked: why, in which phase, and what
    of the file was not run."""

    error: str
    phase: FailurePhase
    skipped: tuple[Skipped, ...] = ()
    observed: Observation | None = None


Message = PhaseStarted | CallStarted | CallFinished | CheckAnswer | CheckFailure
_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (PhaseStarted, CallStarted, CallFinished, CheckAnswer, CheckFailure)
}


def _skipped(items: list[JsonObject]) -> tuple[Skipped, ...]:
    return tuple(Skipped.from_json(s) for s in items)


def _to_json(message: Message | CheckRequest) -> JsonObject:
    if isinstance(message, CheckAnswer):
        data: JsonObject = {
            "name": message.name,
            "described": message.described,
            "others": [asdict(o) for o in message.others],
            "probe": message.probe.to_json(),
            "skipped": [s.to_json() for s in message.skipped],
            "init": dict(message.init),
            "defaults": dict(message.defaults),
            "seconds": message.seconds,
            "sizes": dict(message.sizes),
            "model": None if message.model is None else message.model.to_json(),
            "framework": message.framework,
            "supplied": list(message.supplied),
            "observed": None if message.observed is None else message.observed.to_json(),
        }
        return data
    if isinstance(message, CheckFailure):
        return {
            "error": message.error,
            "phase": message.phase,
            "skipped": [s.to_json() for s in message.skipped],
            "observed": None if message.observed is None else message.observed.to_json(),
        }
    out: JsonObject = asdict(message)
    return out


def encode(message: Message | CheckRequest) -> bytes:
    """One JSON line: ``{"type": <class name>, ...its fields}``."""
    return (json.dumps({"type": type(message).__name__, **_to_json(message)}) + "\n").encode()


def decode_request(data: JsonObject) -> CheckRequest:
    """The request from its JSON object (:func:`encode` of a :class:`CheckRequest`)."""
    d = dict(data)
    d.pop("type", None)
    shape = d["input_shape"]
    return CheckRequest(
        path=str(d["path"]),
        module=str(d["module"]),
        search_path=tuple(_strings(d["search_path"])),
        names=tuple(_strings(d["names"])),
        explicit=bool(d["explicit"]),
        args={str(k): str(v) for k, v in _object(d["args"]).items()},
        init={str(k): str(v) for k, v in _object(d["init"]).items()},
        sizes={str(k): int(_number(v)) for k, v in _object(d["sizes"]).items()},
        input_shape=None if shape is None else tuple(int(_number(n)) for n in _list(shape)),
        timeout=float(_number(d["timeout"])),
        exec_module=bool(d["exec_module"]),
        taps=TapNames(**{str(k): None if v is None else str(v) for k, v in _object(d["taps"]).items()}),
        writable=tuple(_strings(d.get("writable", []))),
        framework=str(d.get("framework", "torch")),
        arrays=str(d.get("arrays", "torch")),
        keras_backend=None if d.get("keras_backend") is None else str(d["keras_backend"]),
        keras2=tuple(_strings(d.get("keras2", []))),
        inline=tuple(
            (str(n), str(src), str(what)) for n, src, what in map(_list, _list(d.get("inline", [])))
        ),
        nested=tuple((str(n), str(src)) for n, src in map(_list, _list(d.get("nested", [])))),
        mode="run" if d.get("mode") == "run" else "call",
        given=tuple(_strings(d.get("given", []))),
        script_args=tuple(_strings(d.get("script_args", []))),
    )


def decode(line: bytes | str) -> Message:
    """The message of one line written by :func:`encode`."""
    data = json.loads(line)
    kind = data.pop("type")
    if kind == "CheckAnswer":
        model = data["model"]
        return CheckAnswer(
            name=data["name"],
            described=data["described"],
            others=tuple(CandidateSummary(**o) for o in data["others"]),
            probe=ProbeResult.from_json(data["probe"]),
            skipped=_skipped(data["skipped"]),
            init=data["init"],
            defaults=data["defaults"],
            seconds=data["seconds"],
            sizes=data["sizes"],
            model=None
            if model is None
            else ThroughModel(**{**model, "input_shape": tuple(model["input_shape"])}),
            framework=data.get("framework", "torch"),
            supplied=tuple(data.get("supplied", ())),
            observed=_observed(data.get("observed")),
        )
    if kind == "CheckFailure":
        return CheckFailure(
            data["error"], data["phase"], _skipped(data["skipped"]), _observed(data.get("observed"))
        )
    message: Message = _TYPES[kind](**data)
    return message


def _observed(value: Json) -> Observation | None:
    return None if value is None else Observation.from_json(_object(value))


def _object(value: Json) -> dict[str, Json]:
    assert isinstance(value, dict)
    return value


def _list(value: Json) -> list[Json]:
    assert isinstance(value, list)
    return value


def _strings(value: Json) -> list[str]:
    return [str(v) for v in _list(value)]


def _number(value: Json) -> float:
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
    return value
