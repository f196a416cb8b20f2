"""From a name in the user's module to something to call (runs in the worker process).

``NAME`` may be a function, a class (its ``__call__``, or ``forward`` for an ``nn.Module``),
``Class.method``, a module-level instance, or a factory that returns a loss. Classes and
factories are built with their own defaults plus ``--init NAME=VALUE``; a method that does not
read ``self`` is called without building its class (whose constructor may need arguments the
loss does not). Values of ``--init`` and ``--arg`` are Python literals, else expressions in the
module's namespace (``--init config="VAEConfig(latent_dim=16)"``), else plain strings.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vaeloss.check.source import returns_inner_function
from vaeloss.usercode.construct import BuildError, build
from vaeloss.usercode.loader import Loaded

__all__ = ["LossObject", "ObjectError", "StateGuard", "resolve_object"]


class ObjectError(Exception):
    """The name cannot be turned into something to call; the message says why and what to do."""


@dataclass
class LossObject:
    """What will be probed.

    Attributes:
        call: the callable (a function, a bound method, an instance).
        name: the name it was asked as.
        described: how it was obtained, for the report.
        function: the Python function behind ``call`` (for its signature and source).
        instance: the object whose state a call may change (None for plain functions).
        init: the constructor or factory arguments used.
    """

    call: Callable[..., Any]
    name: str
    described: str
    function: Callable[..., Any] | None
    instance: object | None = None
    init: dict[str, object] = field(default_factory=dict)


def _uses_self(fn: Callable[..., Any]) -> bool:
    """Whether a method's body reads its first parameter (True when the source is unknown)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return True
    node = tree.body[0]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.args.args:
        return True
    first = node.args.args[0].arg
    return any(
        isinstance(n, ast.Name) and n.id == first for n in ast.walk(node) if n is not node.args.args[0]
    )


def _build(what: Callable[..., Any], label: str, init: dict[str, object]) -> Any:
    try:
        return build(what, label, init)
    except BuildError as exc:
        raise ObjectError(str(exc)) from None


def _looks_like_factory(fn: Callable[..., Any]) -> bool:
    """A function whose body defines a function (or lambda) and returns it, or returns a
    ``partial``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    node = tree.body[0]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    if returns_inner_function(node):
        return True
    return any(
        isinstance(ret.value, ast.Call)
        and isinstance(ret.value.func, ast.Name)
        and ret.value.func.id == "partial"
        for ret in ast.walk(node)
        if isinstance(ret, ast.Return)
    )


def _of_instance(obj: Any, name: str, described: str, init: dict[str, object]) -> LossObject:
    if isinstance(obj, nn.Module):
        return LossObject(obj, name, f"{described}, its forward", type(obj).forward, obj, init)
    call = type(obj).__call__
    return LossObject(obj, name, f"{described}, its __call__", call, obj, init)


def resolve_object(loaded: Loaded, name: str, init: dict[str, object]) -> LossObject:
    """The callable that ``name`` denotes in the loaded module (see the module docstring).

    Raises:
        ObjectError: the name is missing, or its class or factory cannot be built.
    """
    module = loaded.module
    head, _, method = name.partition(".")
    if not hasattr(module, head):
        why = loaded.explain_name(head)
        path = loaded.source.path.name
        if why:
            raise ObjectError(
                f"Expected {head!r} in {path} but it is not defined after loading the file: {why}."
            )
        own = [
            n
            for n, v in vars(module).items()
            if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        ]
        raise ObjectError(
            f"Expected a function, class or object named {head!r} in {path} but found none; it defines: "
            f"{', '.join(sorted(own)[:12]) or 'nothing callable'}. Try 'vaeloss check {path}:NAME' with one "
            f"of those."
        )
    obj = getattr(module, head)
    if method:
        inner = getattr(obj, method, None) if isinstance(obj, types.FunctionType) else None
        if isinstance(inner, types.FunctionType):  # main.loss_fn: defined inside main()
            return LossObject(inner, name, f"function {method}, defined inside {head}()", inner)
        if not isinstance(obj, type):
            target = getattr(obj, method, None)
            if target is None:
                raise ObjectError(f"{head} has no attribute {method!r}")
            return LossObject(
                target, name, f"{name} of the module-level object", getattr(target, "__func__", target), obj
            )
        raw = inspect.getattr_static(obj, method, None)
        if raw is None:
            raise ObjectError(f"class {head} has no method {method!r}")
        if isinstance(raw, staticmethod):
            return LossObject(raw.__func__, name, f"static method {name}", raw.__func__)
        if isinstance(raw, classmethod):
            return LossObject(getattr(obj, method), name, f"class method {name}", raw.__func__)
        fn = raw
        if not _uses_self(fn):
            stand_in: object = object.__new__(obj)
            return LossObject(
                types.MethodType(fn, stand_in),
                name,
                f"method {name} (it does not read self: no {head} is built)",
                fn,
            )
        instance = _build(obj, f"{head}()", init)
        built = construction(head, init)
        return LossObject(getattr(instance, method), name, f"method {name} of {built}", fn, instance, init)
    if isinstance(obj, type):
        instance = _build(obj, f"{head}()", init)
        return _of_instance(instance, name, f"{construction(head, init)}", init)
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        if init or _looks_like_factory(obj):
            made, built = _build(obj, f"{head}()", init), construction(head, init)
            if not callable(made):
                raise ObjectError(f"{built} returned {type(made).__name__}, not a loss to call")
            if isinstance(made, (types.FunctionType, types.MethodType)):
                return LossObject(made, name, f"the loss {built} returns", made, None, init)
            return _of_instance(made, name, f"the object {built} returns", init)
        return LossObject(obj, name, f"function {head}", obj)
    if callable(obj):
        return _of_instance(obj, name, f"the module-level {type(obj).__name__} {head}", {})
    raise ObjectError(f"{head} is a {type(obj).__name__}, not a function, class or callable object")


def construction(head: str, init: dict[str, object]) -> str:
    """How an object is built, as the report shows it.

    >>> construction("VAE", {"beta": 4.0})
    'VAE(beta=4.0)'
    """
    return f"{head}({', '.join(f'{k}={v!r}' for k, v in init.items())})"


class StateGuard:
    """Keeps an object's simple state (numbers, strings, tensors) as it was before the first
    call, so that every probe call sees the same objective, and says what a call changed."""

    def __init__(self, obj: object | None) -> None:
        self.obj = obj
        self.saved = self._snapshot()

    def _snapshot(self) -> dict[str, object]:
        if self.obj is None:
            return {}
        out: dict[str, object] = {}
        names = set(getattr(self.obj, "__dict__", {}))
        names |= {n for n, v in vars(type(self.obj)).items() if isinstance(v, (int, float, bool, str))}
        for n in names:
            if n.startswith("__"):
                continue
            try:
                v = getattr(self.obj, n)
            except Exception:  # noqa: BLE001 - a property that fails
                continue
            if isinstance(v, (int, float, bool, str)):
                out[n] = v
            elif isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter):
                out[n] = v.detach().clone()
        return out

    def changed(self) -> list[str]:
        """Names whose value differs from the saved one."""
        now = self._snapshot()
        out = []
        for n, v in now.items():
            old = self.saved.get(n, None)
            if isinstance(v, torch.Tensor):
                if not isinstance(old, torch.Tensor) or old.shape != v.shape or not torch.equal(old, v):
                    out.append(n)
            elif n not in self.saved or old != v:
                out.append(n)
        return sorted(out)

    def restore(self) -> None:
        """Put the saved state back (before each probe call)."""
        if self.obj is None:
            return
        for n, v in self.saved.items():
            try:
                setattr(self.obj, n, v.clone() if isinstance(v, torch.Tensor) else v)
            except Exception:  # noqa: BLE001 - a read-only attribute
                continue
