"""Run mode in the worker: observe the user's step (:func:`observe`) and let what it showed
decide the check (:func:`refine`): the function that returned the differentiated loss, and the
sizes B, D, k the step ran at (those the user gave are kept).

>>> from vaeloss.check.observe.result import Observation, ObservedSize
>>> o = Observation("f.py", function="main.<locals>.loss_fn", sizes=(ObservedSize("k", 8, "z"),))
>>> chosen_name(o, lambda name: name == "main.loss_fn")
'main.loss_fn'
>>> observed_sizes({"B": 128, "D": 784, "k": 20}, o, given=("B",))
{'B': 128, 'D': 784, 'k': 8}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from vaeloss.check.observe.result import Observation
from vaeloss.check.observe.torch_step import qualified
from vaeloss.check.protocol import CheckRequest

__all__ = ["OBSERVE_SHARE", "chosen_name", "observe", "observed_sizes", "refine"]

OBSERVE_SHARE = 0.5
"""The share of ``--timeout`` a run may take to reach its first differentiation."""


def observe(request: CheckRequest) -> Observation:
    """Run the request's file up to its first differentiation (PyTorch files)."""
    from vaeloss.check.observe.torch_step import observe_torch_step
    from vaeloss.usercode.sourcefile import read_source_file

    path = Path(request.path)
    source = read_source_file(path)
    package = request.module.rpartition(".")[0]
    return observe_torch_step(
        path,
        package,
        source.text,
        request.timeout * OBSERVE_SHARE,
        where=lambda line: source.where(line) or f"line {line}",
        notebook=source.is_notebook,
        argv=request.script_args,
    )


def chosen_name(observation: Observation, resolves: Callable[[str], bool]) -> str | None:
    """The name to probe: the function that returned the loss, when the loaded file resolves it."""
    if observation.function is None:
        return None
    name = qualified(observation.function)
    return name if name is not None and resolves(name) else None


def observed_sizes(sizes: dict[str, int], observation: Observation, given: tuple[str, ...]) -> dict[str, int]:
    """``sizes`` with those the run showed, except the ones the user gave."""
    seen = {s.name: s.value for s in observation.sizes if s.name not in given}
    return {**sizes, **seen}


def refine(request: CheckRequest, observation: Observation, resolves: Callable[[str], bool]) -> CheckRequest:
    """The request the run's observation decides: its sizes, and its loss function (when the
    user did not name one)."""
    sizes = observed_sizes(request.sizes, observation, request.given)
    name = None if request.explicit else chosen_name(observation, resolves)
    if name is None:
        return replace(request, sizes=sizes)
    return replace(request, sizes=sizes, names=(name,), explicit=True)
