"""What a run of the user's own training step showed: what ran, what was replaced, where it
stopped, which function returned the loss it differentiates, and the sizes it ran at, each with
its origin.

>>> o = Observation(ran="train.py as a script", sizes=(ObservedSize("B", 64, "the batch"),))
>>> Observation.from_json(o.to_json()) == o
True
>>> o.size("B"), o.size("k")
(64, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vaeloss.jsontypes import Json, JsonObject

__all__ = ["ObservedSize", "Observation"]


@dataclass(frozen=True)
class ObservedSize:
    """One size the user's step ran at: ``name`` is ``B``, ``D`` or ``k``; ``origin`` says
    where it was read ("the batch the model was given at line 88: [128, 1, 28, 28]")."""

    name: str
    value: int
    origin: str


@dataclass(frozen=True)
class Observation:
    """A run of the user's file up to its first differentiation of a scalar.

    Attributes:
        ran: what ran ("train_vae.py as a script, with its argparse defaults").
        replaced: each substitution made ("torchvision.datasets.MNIST by synthetic images of
            1x28x28 (60,000 of them, as MNIST's train split has)").
        stopped_at: the differentiation it stopped at ("loss.backward() at line 88"), or None
            when it never got there (then ``failure`` says why).
        function: the qualified name of the function that returned the differentiated loss
            (``loss_function``, ``VAE.loss_function``, ``main.<locals>.loss_fn``), or None when
            the loss is computed inline.
        function_file: the file that defines it, when not the checked one (a module of its
            folder: ``trainer.py``), else None.
        sizes: the sizes the step ran at, each with its origin.
        failure: why the run did not reach a differentiation (the statement and its error).
        seconds: how long the run took.
        arguments: the numbers the step passed to the loss function (``beta=args.beta``): the
            check calls it with them, as the step did (``--arg`` overrides them).
        data_range: the smallest and largest value of the step's batch (after the user's
            transforms: ``Normalize((0.5,), (0.5,))`` gives [-1, 1]), or None.
    """

    ran: str
    replaced: tuple[str, ...] = ()
    stopped_at: str | None = None
    function: str | None = None
    function_file: str | None = None
    sizes: tuple[ObservedSize, ...] = ()
    failure: str | None = None
    seconds: float = 0.0
    data_range: tuple[float, float] | None = None
    arguments: dict[str, int | float | bool] = field(default_factory=dict)

    def size(self, name: str) -> int | None:
        """The observed value of ``B``, ``D`` or ``k``, or None."""
        return next((s.value for s in self.sizes if s.name == name), None)

    def summary(self) -> str | None:
        """What the run did, for people: "X.py as a script ...; stopped at `loss.backward()` at
        line 9", or why it did not get there; None when nothing ran (sizes read from the file)."""
        if self.failure is not None:
            return f"{self.ran}; it did not reach a backward(): {self.failure}"
        if self.stopped_at is not None:
            return f"{self.ran}; stopped at {self.stopped_at}"
        return None

    def origin(self, name: str) -> str | None:
        return next((s.origin for s in self.sizes if s.name == name), None)

    def to_json(self) -> JsonObject:
        return {
            "ran": self.ran,
            "replaced": list(self.replaced),
            "stopped_at": self.stopped_at,
            "function": self.function,
            "function_file": self.function_file,
            "sizes": [{"name": s.name, "value": s.value, "origin": s.origin} for s in self.sizes],
            "failure": self.failure,
            "seconds": self.seconds,
            "data_range": None if self.data_range is None else list(self.data_range),
            "arguments": dict(self.arguments),
        }

    @classmethod
    def from_json(cls, data: JsonObject) -> Observation:
        def text(value: Json) -> str | None:
            return None if value is None else str(value)

        sizes = data.get("sizes") or []
        assert isinstance(sizes, list)
        replaced = data.get("replaced") or []
        assert isinstance(replaced, list)
        seconds = data.get("seconds", 0.0)
        assert isinstance(seconds, (int, float))
        span = data.get("data_range")
        assert span is None or isinstance(span, list)
        return cls(
            ran=str(data["ran"]),
            replaced=tuple(str(r) for r in replaced),
            stopped_at=text(data.get("stopped_at")),
            function=text(data.get("function")),
            function_file=text(data.get("function_file")),
            sizes=tuple(ObservedSize(str(s["name"]), int(s["value"]), str(s["origin"])) for s in sizes),
            failure=text(data.get("failure")),
            seconds=float(seconds),
            data_range=None if span is None else (float(span[0]), float(span[1])),
            arguments={
                str(k): v
                for k, v in _object(data.get("arguments") or {}).items()
                if isinstance(v, (int, float, bool))
            },
        )


def _object(value: Json) -> dict[str, Json]:
    assert isinstance(value, dict)
    return value
