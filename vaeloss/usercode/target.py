"""What ``vaeloss check TARGET`` names: a file (``.py`` or ``.ipynb``) or a module
(``pkg.module``), an optional object name after ``:``, and how to import the file: as a member
of its package (found by its ``__init__.py`` files), so that relative imports work.
Nothing here executes the file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from vaeloss.errors import UserCodeError

__all__ = ["Target", "resolve_target"]

LOOSE_MODULE = "vaeloss_user_loss"


@dataclass(frozen=True)
class Target:
    """A resolved check target.

    Attributes:
        path: the file to read.
        name: the object named after ``:`` (``loss``, ``VAE.loss_function``; a line number
            names a loss computed inline there), or None.
        module: the module name the file is imported as (``pkg.sub.mod`` inside a package).
        search_path: folders put first on ``sys.path``: the top package's parent (so that
            ``pkg`` imports), then the file's own folder (sibling imports of scripts).
    """

    path: Path
    name: str | None
    module: str
    search_path: tuple[str, ...]

    @property
    def package(self) -> str | None:
        """The package the module belongs to (None for a loose file)."""
        head, _, _ = self.module.rpartition(".")
        return head or None


def _split(text: str) -> tuple[str, str | None]:
    if ":" in text:
        head, _, tail = text.rpartition(":")
        if head and tail and (tail.isdigit() or all(part.isidentifier() for part in tail.split("."))):
            return head, tail  # a name, or a line (``FILE:53``: the loss computed inline there)
    return text, None


def _module_file(dotted: str) -> Path | None:
    """The file of module ``dotted`` on the current folder or ``sys.path``, without importing."""
    parts = dotted.split(".")
    for root in [os.getcwd(), *sys.path]:
        base = Path(root or ".").joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _package_parts(path: Path) -> tuple[list[str], Path]:
    """Package names above ``path`` (outermost first) and the folder holding the top package."""
    parts: list[str] = []
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    return parts, folder


def resolve_target(text: str) -> Target:
    """Resolve ``PATH[:NAME]`` or ``pkg.module[:NAME]``.

    Raises:
        UserCodeError: neither a file nor a module that can be found.
    """
    where, name = _split(text)
    path = Path(where)
    if not path.exists() and path.suffix in (".py", ".ipynb"):
        raise UserCodeError(
            f"Expected a Python file or notebook but got path={where!r}, which does not exist. "
            f"Try the path of an existing .py file or .ipynb notebook, from {Path.cwd()}."
        )
    if not path.exists() and all(p.isidentifier() for p in where.split(".")):
        found = _module_file(where)
        if found is None:
            raise UserCodeError(
                f"Expected a Python file or an importable module but got target={text!r}: no file "
                f"{where!r} and no module of that name in this folder or on sys.path. Try the path "
                f"of the file, e.g. 'vaeloss check models/vae.py:loss_function'."
            )
        path = found
    path = Path(os.path.abspath(path))
    if path.suffix == ".ipynb":
        return Target(path, name, "vaeloss_user_notebook", (str(path.parent),))
    packages, top = _package_parts(path)
    if not packages or not path.stem.isidentifier():
        return Target(path, name, LOOSE_MODULE, (str(path.parent),))
    module = ".".join(packages if path.stem == "__init__" else [*packages, path.stem])
    return Target(path, name, module, (str(top), str(path.parent)))
