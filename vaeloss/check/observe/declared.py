"""The sizes a loaded file declares for its loss, when there is no step to run: a Keras 2
closure ``vae_loss(x, x_decoded_mean)`` reads its posterior from module-level symbolic tensors
(``z_mean = Dense(latent_dim)(h)``), whose shapes give k (and B, when the model's input has a
``batch_shape``); the model it is compiled into (``vae.compile(loss=vae_loss)``) gives D; the
``batch_size`` of its ``fit`` call (else Keras's default, 32) gives B.

>>> import ast
>>> tree = ast.parse("vae.compile(optimizer='rmsprop', loss=vae_loss)\\nvae.fit(x, x, batch_size=bs)")
>>> _call_keyword(tree, "compile", "loss", "vae_loss"), _fit_batch_size(tree, {"bs": 100})
('vae', (100, 2, True))
"""

from __future__ import annotations

import ast
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from vaeloss.check.observe.result import Observation, ObservedSize
from vaeloss.usercode.sourcefile import SourceFile

__all__ = ["KERAS_DEFAULT_BATCH", "declared_sizes", "with_declared"]

KERAS_DEFAULT_BATCH = 32
"""``Model.fit``'s ``batch_size`` when none is given (Keras's documented default)."""


def _dims(value: Any) -> tuple[int | None, ...] | None:
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(None if n is None else int(n) for n in shape)
    except (TypeError, ValueError):
        return None


def _call_keyword(tree: ast.Module, method: str, keyword: str, name: str) -> str | None:
    """``OBJ`` of a call ``OBJ.method(..., keyword=name)`` in the file (``vae.compile(loss=vae_loss)``)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == method
            and isinstance(node.func.value, ast.Name)
            and any(
                k.arg == keyword and isinstance(k.value, ast.Name) and k.value.id == name
                for k in node.keywords
            )
        ):
            return node.func.value.id
    return None


def _fit_batch_size(
    tree: ast.Module, namespace: dict[str, Any], model: str | None = None
) -> tuple[int, int, bool] | None:
    """The ``batch_size`` of the file's first ``fit`` call (of ``model`` when given), its line
    and whether the call gives it: a literal or a module-level name; Keras's default when the
    call gives none."""
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fit"
        ):
            continue
        if model is not None and not (isinstance(node.func.value, ast.Name) and node.func.value.id == model):
            continue
        given = next((k.value for k in node.keywords if k.arg == "batch_size"), None)
        if given is None:
            return KERAS_DEFAULT_BATCH, node.lineno, False
        if isinstance(given, ast.Constant) and isinstance(given.value, int):
            return given.value, node.lineno, True
        if isinstance(given, ast.Name) and isinstance(namespace.get(given.id), int):
            return int(namespace[given.id]), node.lineno, True
        return None
    return None


def declared_sizes(fn: Callable[..., Any], name: str, tree: ast.Module) -> tuple[ObservedSize, ...]:
    """The sizes the loaded file declares for the loss ``fn`` (named ``name`` in the file) that
    reads module-level latent tensors; () for any other loss."""
    from vaeloss.check.forms import free_tensors, function_tree

    body = function_tree(fn)
    namespace: dict[str, Any] = getattr(fn, "__globals__", {})
    if body is None:
        return ()
    latents: dict[str, tuple[int | None, ...]] = {}
    for p in free_tensors(fn, body, set()):
        dims = _dims(namespace.get(p.name)) if p.kind == "global" else None
        if dims is not None and len(dims) == 2 and dims[1] is not None:
            latents[p.name] = dims
    if not latents:
        return ()
    widths = Counter(d[1] for d in latents.values())
    k = max(widths.items(), key=lambda item: (item[1], -(item[0] or 0)))[0]
    assert k is not None
    names = ", ".join(n for n, d in latents.items() if d[1] == k)
    sizes = [
        ObservedSize(
            "k", k, f"the width of {names}, which the loss reads: [{latents[names.split(', ')[0]][0]}, {k}]"
        )
    ]
    model = _call_keyword(tree, "compile", "loss", name.rpartition(".")[2])
    inputs = getattr(namespace.get(model), "inputs", None) if model else None
    first = _dims(inputs[0]) if inputs else None
    if first is not None and all(n is not None for n in first[1:]):
        D = math.prod(n for n in first[1:] if n is not None)
        shown = ", ".join("None" if n is None else str(n) for n in first)
        sizes.append(
            ObservedSize("D", D, f"the input of {model}, the model compiled with this loss: [{shown}]")
        )
    batch = next((d[0] for d in latents.values() if d[0] is not None), None)
    if batch is not None:
        sizes.append(ObservedSize("B", batch, f"the first dim of {names} (the model's batch_shape)"))
    elif (fit := _fit_batch_size(tree, namespace, model)) is not None:
        size, line, given = fit
        origin = f"the batch_size of fit at line {line}" if given else (
            f"fit at line {line} gives no batch_size: Keras's default"
        )  # fmt: skip
        sizes.append(ObservedSize("B", size, origin))
    return tuple(sizes)


def with_declared(
    observed: Observation | None, fn: Callable[..., Any] | None, name: str, source: SourceFile
) -> Observation | None:
    """``observed`` with the sizes the loaded file declares for the loss ``fn`` (named ``name``
    in ``source``) when no run showed any: an observation of the file, not of a run (``observed``
    itself when there is nothing to add)."""
    if fn is None or (observed is not None and observed.sizes):
        return observed
    try:
        sizes = declared_sizes(fn, name, ast.parse(source.text))
    except Exception:  # noqa: BLE001 - the user's objects' shapes: a size not read is the default
        sizes = ()
    if not sizes:
        return observed
    if observed is not None:
        return replace(observed, sizes=sizes)
    return Observation(f"{source.path.name}'s top-level statements (loaded, not run)", sizes=sizes)
