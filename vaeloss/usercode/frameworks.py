"""Which framework a user's file is written in, told by its imports, and whether it is installed.

A file's framework decides the arrays its loss is called with:

* ``torch``: it imports ``torch`` (also with other frameworks: PyTorch code may use NumPy or
  ``keras.ops`` on torch tensors);
* ``tensorflow``: it imports ``tensorflow`` (``tf.keras`` included);
* ``jax``: it imports ``jax``, ``flax`` or ``optax``;
* ``mlx``: it imports ``mlx`` (Apple's framework; its CPU build runs on Linux too);
* ``keras``: it imports ``keras`` and none of the above: Keras 3 runs on the backend of the
  user's ``KERAS_BACKEND``, by default on torch (whose tensors keep float64 and autograd);
* ``numpy``: it imports none of these, only ``numpy``/``scipy`` (no gradient findings).

A framework that is not installed is a :class:`~vaeloss.errors.UserCodeError` naming the
import line and the extra that installs it (``pip install 'vaeloss[tensorflow]'``).
Nothing here executes the file.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass
from typing import Literal

from vaeloss.errors import UserCodeError
from vaeloss.usercode.sourcefile import SourceFile

__all__ = ["ArrayKind", "FrameworkName", "FrameworkUse", "detect_framework", "require_framework"]

FrameworkName = Literal["torch", "tensorflow", "jax", "mlx", "keras", "numpy"]
ArrayKind = Literal["torch", "tensorflow", "jax", "mlx", "numpy"]

_MODULES: dict[FrameworkName, tuple[str, ...]] = {
    "torch": ("torch", "torchvision", "lightning", "pytorch_lightning"),
    "tensorflow": ("tensorflow", "tf_keras", "tensorflow_probability"),
    "jax": ("jax", "flax", "optax", "jaxlib"),
    "mlx": ("mlx",),
    "keras": ("keras",),
    "numpy": ("numpy", "scipy"),
}
_ORDER: tuple[FrameworkName, ...] = ("torch", "tensorflow", "jax", "mlx", "keras", "numpy")
_INSTALLS: dict[str, tuple[str, tuple[str, ...]]] = {
    # module -> (the distribution to find, what to pip install for it)
    "torch": ("torch", ("vaeloss",)),
    "tensorflow": ("tensorflow", ("vaeloss[tensorflow]",)),
    "tf_keras": ("tf_keras", ("vaeloss[tensorflow]", "tf_keras")),
    "tensorflow_probability": ("tensorflow_probability", ("vaeloss[tensorflow]", "tensorflow-probability")),
    "jax": ("jax", ("vaeloss[jax]",)),
    "jaxlib": ("jaxlib", ("vaeloss[jax]",)),
    "flax": ("flax", ("vaeloss[jax]",)),
    "optax": ("optax", ("vaeloss[jax]",)),
    "keras": ("keras", ("vaeloss[keras]",)),
    "mlx": ("mlx", ("vaeloss[mlx]",)),
}
_ARRAYS: dict[str, ArrayKind] = {
    # a framework (or a KERAS_BACKEND) -> the arrays it computes with
    "torch": "torch",
    "tensorflow": "tensorflow",
    "jax": "jax",
    "mlx": "mlx",
    "numpy": "numpy",
}


@dataclass(frozen=True)
class FrameworkUse:
    """The framework of a file and the imports that tell it.

    Attributes:
        name: the framework the file is written in.
        arrays: the arrays its loss is called with (Keras: those of its backend).
        keras_backend: for a file that imports Keras, the backend Keras runs on (None otherwise).
        imports: ``(line, top-level module, source line)`` of every import of a framework.
    """

    name: FrameworkName
    arrays: ArrayKind
    keras_backend: ArrayKind | None = None
    imports: tuple[tuple[int, str, str], ...] = ()

    def describe(self) -> str:
        """The framework for people: ``keras (on torch)``, ``tensorflow``.

        >>> FrameworkUse("keras", "torch", "torch").describe()
        'keras (Keras 3 on its torch backend)'
        """
        if self.name == "keras":
            return f"keras (Keras 3 on its {self.keras_backend} backend)"
        return self.name


def _imported(tree: ast.AST, text: str) -> list[tuple[int, str, str]]:
    lines = text.splitlines()
    out: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module]
        else:
            continue
        for m in modules:
            line = lines[node.lineno - 1].strip() if 0 < node.lineno <= len(lines) else m
            out.append((node.lineno, m.split(".")[0], line))
    return sorted(out)


def detect_framework(source: SourceFile, tree: ast.AST | None = None) -> FrameworkUse:
    """The framework of a file, from its imports (see the module docstring).

    >>> from pathlib import Path
    >>> detect_framework(SourceFile(Path("v.py"), "import tensorflow as tf\\n")).name
    'tensorflow'
    """
    if tree is None:
        tree = ast.parse(source.text)
    imports = tuple(i for i in _imported(tree, source.text) if any(i[1] in m for m in _MODULES.values()))
    tops = {m for _, m, _ in imports}
    found = [f for f in _ORDER if tops & set(_MODULES[f])]
    name: FrameworkName = found[0] if found else "torch"
    if name == "tensorflow" and "jax" in found:
        name = _most_used(tree, ("tensorflow", "jax"))
    keras_backend: ArrayKind | None = None
    if "keras" in tops or name == "tensorflow":
        keras_backend = _keras_backend(name)
    arrays: ArrayKind = keras_backend if name == "keras" and keras_backend else _ARRAYS[name]
    return FrameworkUse(name, arrays, keras_backend, imports)


def _aliases(tree: ast.AST) -> dict[str, FrameworkName]:
    """The names the file binds to a framework's modules (``jnp`` -> jax, ``tf`` -> tensorflow)."""
    out: dict[str, FrameworkName] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            base = node.module if isinstance(node, ast.ImportFrom) else None
            for a in node.names:
                top = (base or a.name).split(".")[0]
                framework = next((f for f, mods in _MODULES.items() if top in mods), None)
                if framework is not None:
                    out[a.asname or a.name.split(".")[0]] = framework
    return out


def _most_used(tree: ast.AST, among: tuple[FrameworkName, ...]) -> FrameworkName:
    """Of two frameworks a file imports (a flax script reading its data with TensorFlow), the one
    its code uses most by name (the first on a tie)."""
    aliases = _aliases(tree)
    uses = dict.fromkeys(among, 0)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and aliases.get(node.id) in uses:
            uses[aliases[node.id]] += 1
    return max(among, key=lambda f: (uses[f], -among.index(f)))


def _keras_backend(name: FrameworkName) -> ArrayKind:
    """The backend Keras runs on: the framework's own (TensorFlow, JAX, torch), else the
    user's ``KERAS_BACKEND``, else torch."""
    if name in ("tensorflow", "jax", "torch"):
        return _ARRAYS[name]
    chosen = os.environ.get("KERAS_BACKEND", "").strip().lower()
    return _ARRAYS.get(chosen, "torch")


def require_framework(use: FrameworkUse, source: SourceFile) -> None:
    """Raise :class:`UserCodeError` when the file's framework (a module of it the file
    imports) is not installed; another framework's imports are the loader's to skip.

    Raises:
        UserCodeError: naming the import line and the extra to install.
    """
    needed = set(_MODULES[use.name]) | ({"keras"} if use.keras_backend is not None else set())
    for line, module, text in use.imports:
        if module not in needed:
            continue  # another framework's import (a flax script's tf.data): skipped if missing
        dist = _INSTALLS.get(module)
        if dist is None or importlib.util.find_spec(dist[0]) is not None:
            continue
        where = source.where(line) or f"line {line}"
        raise UserCodeError(
            f"Expected {dist[0]} to be installed to check {source.path.name}, which imports it at "
            f"{where} ({text}), but it is not. Try pip install {' '.join(repr(a) for a in dist[1])}."
        )
