"""The user's calls compiled whole, once per shape of their arrays, for frameworks that run op
by op slowly (JAX compiles every operation anew at each of the probe's shapes; TensorFlow's
eager ops cost about 0.25 ms each here) and compile a traced function fast: ``jax.jit``,
``tf.function``.

Every array the probe passes, the names it binds outside the loss's parameters included, is an
argument of the compiled function, so no array is frozen into a compilation; the other values
of a call (numbers such as a doubled KL weight, strings) are its constants, one compilation
each. A call that does not trace (``float()`` of an array, a Python branch on a value, outputs
that are not arrays), that draws random numbers a compilation would freeze (NumPy's or
Python's global ones while traced, a framework's random ops in its graph), or that rebinds a
name of its module, runs op by op as written, and so do all later calls of the same structure;
so does every call of a loss with an object's state (a method: ``self.step += 1`` must run at
each call). Not seen: draws from a generator object the loss makes itself
(``np.random.default_rng()``), which a compilation freezes: such a loss then fits no KL and is
refused, never given a beta.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from vaeloss.check.probe.backend import Invocation, UserCall

__all__ = ["ChangesItsModule", "CompiledCalls", "DrawsRandomNumbers"]


class DrawsRandomNumbers(Exception):
    """The traced call drew random numbers that a compilation would freeze."""


class ChangesItsModule(Exception):
    """The traced call rebound names of its module (``global KEY``): a compilation would run it
    once."""


_ARRAY = object()
"""Where an array goes among a call's leaves."""


def _flatten(value: Any, leaves: list[Any]) -> Hashable:
    """The structure of nested lists, tuples and dicts (leaves appended to ``leaves``)."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_flatten(v, leaves) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _flatten(v, leaves)) for k, v in value.items()))
    leaves.append(value)
    return None


def _unflatten(structure: Any, leaves: Any) -> Any:
    """The value :func:`_flatten` took apart, from its structure and an iterator of leaves."""
    if structure is None:
        return next(leaves)
    kind, parts = structure
    if kind == "dict":
        return {k: _unflatten(s, leaves) for k, s in parts}
    items = [_unflatten(s, leaves) for s in parts]
    return tuple(items) if kind == "tuple" else items


def _random_states() -> tuple[object, ...]:
    """Python's and NumPy's global random states, comparable (NumPy's cached Gaussian too)."""
    state: Any = np.random.get_state(legacy=True)
    return random.getstate(), state[1].tobytes(), *state[2:]


def _traceable(
    fn: UserCall,
    structure: Hashable,
    statics: tuple[Any, ...],
    slots: tuple[Any, ...],
    namespace: dict[str, Any],
) -> Callable[..., Any]:
    """``fn`` as a function of the call's arrays alone (the other leaves of ``statics`` fixed,
    as ``(type, value)``; ``_ARRAY`` where an array goes), refusing a call that draws NumPy's or
    Python's numbers or rebinds a name of ``namespace`` (its module's; put back as it was)."""

    def traced(*arrays: Any) -> Any:
        it = iter(arrays)
        leaves = iter([next(it) if leaf is _ARRAY else leaf[1] for leaf in statics])
        args, kwargs, values = _unflatten(structure, leaves)
        before, names = _random_states(), dict(namespace)
        out = fn(args, kwargs, dict(zip(slots, values)))
        if _random_states() != before:
            raise DrawsRandomNumbers
        if len(namespace) != len(names) or any(namespace.get(k, _ARRAY) is not v for k, v in names.items()):
            namespace.clear()
            namespace.update(names)
            raise ChangesItsModule
        return out

    return traced


class CompiledCalls:
    """A backend's compiled calls (see the module docstring).

    Args:
        is_array: whether a leaf of a call is one of the framework's arrays.
        compile: the framework's compiler of a function of arrays (``jax.jit``); the function it
            returns may raise :class:`DrawsRandomNumbers` for random ops in its graph.
    """

    def __init__(
        self, is_array: Callable[[Any], bool], compile: Callable[[Callable[..., Any]], Callable[..., Any]]
    ) -> None:
        self.is_array, self.compile = is_array, compile
        self._compiled: dict[Hashable, Callable[..., Any]] = {}
        self._eager: set[Hashable] = set()
        """Calls (owner and structure of the arguments) that run op by op: they do not trace."""

    def call(self, call: Invocation, as_written: Callable[[], Any] | None = None) -> Any:
        """The call compiled for its structure and shapes; run by ``as_written`` (default
        :meth:`Invocation.as_written`) when it does not compile, and always when it has no
        ``namespace`` (a call with an object's state)."""
        as_written = as_written or call.as_written
        if call.namespace is None:
            return as_written()
        leaves: list[Any] = []
        structure = _flatten((call.args, call.kwargs, list(call.bindings.values())), leaves)
        arrays = [leaf for leaf in leaves if self.is_array(leaf)]
        statics = tuple(_ARRAY if self.is_array(leaf) else (type(leaf), leaf) for leaf in leaves)
        key = (call.owner, structure, statics, tuple(call.bindings))
        try:
            eager = key in self._eager
        except TypeError:  # a value that is no array and cannot be a compilation's constant
            eager = True
        if eager:
            return as_written()
        shaped = (key, tuple((tuple(a.shape), str(a.dtype)) for a in arrays))
        compiled = self._compiled.get(shaped)
        if compiled is None:
            traced = _traceable(call.fn, structure, statics, tuple(call.bindings), call.namespace)
            compiled = self._compiled[shaped] = self.compile(traced)
        states = random.getstate(), np.random.get_state()
        try:
            return compiled(*arrays)
        except Exception:  # noqa: BLE001 - run as written: the user's own error, or code that does not trace
            random.setstate(states[0])  # the draws a failed trace made are not the call's
            np.random.set_state(states[1])
            out = as_written()
        self._eager.add(key)  # it runs as written but does not trace
        return out
