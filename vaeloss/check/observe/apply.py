"""Run mode in the worker: observe the user's step (:func:`observe`) and let what it showed
decide the check (:func:`decide`): the loss that returned the differentiated tensor, as the run
left it (the object whose method it is, with the state the user's code gave it; the closure
with its cells), else by its name; and the sizes B, D, k the step ran at (those the user gave
are kept).

>>> from vaeloss.check.observe.result import Observation, ObservedSize
>>> o = Observation("f.py", function="main.<locals>.loss_fn", sizes=(ObservedSize("k", 8, "z"),))
>>> observed_sizes({"B": 128, "D": 784, "k": 20}, o, given=("B",))
{'B': 128, 'D': 784, 'k': 8}
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from vaeloss.check.observe.result import Observation
from vaeloss.check.observe.torch_step import Live, qualified
from vaeloss.check.protocol import CheckRequest

if TYPE_CHECKING:
    from vaeloss.check.objects import LossObject
    from vaeloss.usercode.loader import Loaded

__all__ = ["OBSERVE_SHARE", "Decision", "decide", "defining", "live_object", "observe", "observed_sizes"]

OBSERVE_SHARE = 0.5
"""The share of ``--timeout`` a run may take to reach its first differentiation."""


def observe(request: CheckRequest) -> tuple[Observation, Live | None]:
    """Run the request's file up to its first differentiation (PyTorch files): what it showed,
    and the loss function as the run left it."""
    from vaeloss.check.observe.torch_step import run_torch_step
    from vaeloss.usercode.loader import put_first_on_path
    from vaeloss.usercode.sourcefile import read_source_file

    path = Path(request.path)
    source = read_source_file(path)
    put_first_on_path((str(path.parent), *request.search_path))  # as ``python FILE`` has it
    package = request.module.rpartition(".")[0]
    return run_torch_step(
        path,
        package,
        source.text,
        request.timeout * OBSERVE_SHARE,
        where=lambda line: source.where(line) or f"line {line}",
        notebook=source.is_notebook,
        argv=request.script_args,
    )


def observed_sizes(sizes: dict[str, int], observation: Observation, given: tuple[str, ...]) -> dict[str, int]:
    """``sizes`` with those the run showed, except the ones the user gave."""
    seen = {s.name: s.value for s in observation.sizes if s.name not in given}
    return {**sizes, **seen}


@dataclass(frozen=True)
class Decision:
    """What the run decides: the request (its sizes; its loss's name), the loaded module the loss
    is resolved in, and the loss as the run left it (None: resolved by name)."""

    request: CheckRequest
    loaded: Loaded
    live: LossObject | None = None


def _state(instance: object) -> str:
    """An object's simple settings, for the report (``beta=4.0``)."""
    values = [
        f"{k}={v!r}"
        for k, v in vars(instance).items()
        if not k.startswith("_") and isinstance(v, (int, float, str, bool)) and k != "training"
    ]
    return ", ".join(values[:6])


def live_object(live: Live, name: str) -> LossObject:
    """The loss object to probe: the run's own function, bound to the run's own object."""
    from torch import nn

    from vaeloss.check.objects import LossObject

    fn, instance = live.function, live.instance
    if instance is None:
        closure = (
            " (a closure: the values it reads from its function are the run's)" if fn.__closure__ else ""
        )
        return LossObject(fn, name, f"function {name}, as your run made it{closure}", fn)
    kind = type(instance).__name__
    state = _state(instance)
    built = f"the {kind} your run built" + (f" ({state})" if state else "")
    if isinstance(instance, nn.Module) and fn.__name__ == "forward":
        return LossObject(instance, name, f"{built}, its forward", fn, instance)
    return LossObject(getattr(instance, fn.__name__), name, f"method {name} of {built}", fn, instance)


def defining(observed: Observation, loaded: Loaded) -> Loaded:
    """The loaded module that defines the loss the run saw: the checked file's, or a module of
    its folder that the run imported (``trainer.py``), as the run left it."""
    from vaeloss.usercode.loader import Loaded
    from vaeloss.usercode.sourcefile import read_source_file

    file = observed.function_file
    if file is None:
        return loaded
    module = next((m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == file), None)
    return loaded if module is None else Loaded(module, read_source_file(Path(file)))


def decide(
    request: CheckRequest, observed: Observation, live: Live | None, loaded: Loaded, init: dict[str, object]
) -> Decision:
    """The check the run decides (see the module docstring). A loss the user named is theirs."""
    from vaeloss.check.objects import resolve_object

    sizes = observed_sizes(request.sizes, observed, request.given)
    name = qualified(observed.function) if observed.function else None
    if request.explicit or name is None:
        return Decision(replace(request, sizes=sizes), loaded)
    named = replace(request, sizes=sizes, names=(name,), explicit=True)
    if live is not None:
        return Decision(named, defining(observed, loaded), live_object(live, name))

    def resolves(where: Loaded) -> bool:
        try:
            resolve_object(where, name, init)
        except Exception:  # noqa: BLE001 - ObjectError, or the user's constructor raising
            return False
        return True

    for where in (defining(observed, loaded), loaded):
        if resolves(where):
            return Decision(named, where)
    return Decision(replace(request, sizes=sizes), loaded)
