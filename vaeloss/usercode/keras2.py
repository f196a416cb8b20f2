"""Keras 2 code as the tutorials have it, run on Keras 3.

Keras 3's ``keras.backend`` no longer has ``mean``, ``sum``, ``square``, ``exp``,
``random_normal``, ``int_shape``... and ``keras.objectives`` was removed in 2020, so the
Keras blog's ``vae_loss`` (``K.mean``, ``objectives.binary_crossentropy``) runs nowhere
unchanged. :func:`keras2_names` reads which of those names a file uses (nothing is executed);
:func:`supply_keras2` then gives ``keras.backend`` the missing ones from Keras 3 itself (the
same function under its new name: ``keras.ops.mean``, ``keras.random.normal``, and
``keras.losses`` for ``keras.objectives``, ``keras.losses.mean_squared_error`` for Keras 2's
``mse``), never re-implementing their maths, and says what it
supplied so that the report can tell the user.

``tf.keras.backend`` (TensorFlow's Keras 3 namespace) still has the Keras 2 functions: nothing
is supplied there.
"""

from __future__ import annotations

import ast
import sys
from typing import Any

__all__ = ["OBJECTIVES", "keras2_names", "supply_keras2"]

OBJECTIVES = "objectives"
"""The name :func:`keras2_names` gives the ``keras.objectives`` module."""

_RENAMED = {"pow": "power", "random_normal": "random.normal", "random_uniform": "random.uniform"}
_LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "MSE": "mean_squared_error",
    "mae": "mean_absolute_error",
    "MAE": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "MAPE": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "MSLE": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
    "KLD": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "logcosh": "log_cosh",
}
"""Keras 2's short names of its losses (``from keras.losses import mse``), gone in Keras 3."""
_LOSS_MODULES = ("keras.losses", "keras.objectives", "tensorflow.keras.losses")


def _backend_aliases(tree: ast.AST) -> tuple[set[str], bool]:
    """Names bound to ``keras.backend`` in the file, and whether it imports ``keras.objectives``."""
    aliases: set[str] = set()
    objectives = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "keras" and not node.level:
            for a in node.names:
                if a.name == "backend":
                    aliases.add(a.asname or "backend")
                objectives |= a.name == OBJECTIVES
        elif isinstance(node, ast.ImportFrom) and node.module == "keras.objectives":
            objectives = True
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "keras.backend" and a.asname:
                    aliases.add(a.asname)
                objectives |= a.name == "keras.objectives"
    return aliases, objectives


def keras2_names(tree: ast.AST) -> tuple[str, ...]:
    """The ``keras.backend`` functions a file calls (``K.mean`` -> ``mean``, also
    ``keras.backend.mean``), with :data:`OBJECTIVES` when it imports ``keras.objectives``.

    >>> keras2_names(ast.parse("from keras import backend as K\\ny = K.mean(K.square(x))"))
    ('mean', 'square')
    """
    aliases, objectives = _backend_aliases(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in aliases:
            names.add(node.attr)
        elif (
            isinstance(base, ast.Attribute)
            and base.attr == "backend"
            and isinstance(base.value, ast.Name)
            and base.value.id == "keras"
        ):
            names.add(node.attr)
    return tuple(sorted(names | _loss_aliases(tree))) + ((OBJECTIVES,) if objectives else ())


def _loss_aliases(tree: ast.AST) -> set[str]:
    """``losses.mse`` for each Keras 2 short loss name the file imports or reads from
    ``keras.losses`` (or ``keras.objectives``).

    >>> sorted(_loss_aliases(ast.parse("from keras.losses import mse, binary_crossentropy")))
    ['losses.mse']
    """
    modules = {"losses", "objectives", *_LOSS_MODULES}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in _LOSS_MODULES:
            found |= {a.name for a in node.names if a.name in _LOSS_ALIASES}
        elif isinstance(node, ast.Attribute) and node.attr in _LOSS_ALIASES:
            found |= {node.attr} if ast.unparse(node.value) in modules else set()
    return {f"losses.{n}" for n in found}


def _replacement(keras: Any, name: str) -> tuple[Any, str] | None:
    """Keras 3's function for a Keras 2 backend name, and its Keras 3 name."""
    ops = keras.ops
    if name == "int_shape":
        return (lambda x: tuple(x.shape)), "the tensor's .shape"
    if name == "flatten":
        return (lambda x: ops.reshape(x, (-1,))), "keras.ops.reshape(x, (-1,))"
    if name == "batch_flatten":
        return (lambda x: ops.reshape(x, (ops.shape(x)[0], -1))), "keras.ops.reshape(x, (batch, -1))"
    new = _RENAMED.get(name, name)
    owner: Any = keras.random if new.startswith("random.") else ops
    attr = new.split(".")[-1]
    if hasattr(owner, attr):
        return getattr(owner, attr), f"keras.{'random' if owner is keras.random else 'ops'}.{attr}"
    return None


def supply_keras2(names: tuple[str, ...]) -> tuple[str, ...]:
    """Give ``keras.backend`` (and ``keras.objectives``) the Keras 2 names ``names`` that Keras 3
    lacks; what was supplied, as ``"keras.backend.mean -> keras.ops.mean"``. Call after
    importing keras, before the user's file."""
    import keras

    supplied: list[str] = []
    for name in names:
        if name == OBJECTIVES:
            if "keras.objectives" not in sys.modules and not hasattr(keras, OBJECTIVES):
                sys.modules["keras.objectives"] = keras.losses
                keras.objectives = keras.losses
                supplied.append("keras.objectives -> keras.losses")
            continue
        if name.startswith("losses."):
            short = name.removeprefix("losses.")
            if not hasattr(keras.losses, short):
                setattr(keras.losses, short, getattr(keras.losses, _LOSS_ALIASES[short]))
                supplied.append(f"keras.losses.{short} -> keras.losses.{_LOSS_ALIASES[short]}")
            continue
        if hasattr(keras.backend, name):
            continue
        found = _replacement(keras, name)
        if found is not None:
            setattr(keras.backend, name, found[0])
            supplied.append(f"keras.backend.{name} -> {found[1]}")
    return tuple(supplied)
