"""Which way a check reads the loss: ``run`` (run the user's step and observe it,
:mod:`vaeloss.check.observe`) or ``call`` (call the candidates, :mod:`vaeloss.check.probe`).

``auto`` runs a PyTorch file that differentiates a loss itself (``loss.backward()``,
``torch.autograd.grad``), or imports a module of its own folder that does (``main.py`` calling
``trainer.train()``), when the user did not name the loss; everything else is called.

>>> import ast
>>> choose_mode("auto", ast.parse("loss = f(x)\\nloss.backward()"), "torch", named=False)
'run'
>>> choose_mode("auto", ast.parse("def loss(r, x, m, v): return r"), "torch", named=False)
'call'
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

from vaeloss.errors import InvalidArgumentError

__all__ = ["MODES", "Mode", "choose_mode", "differentiates", "local_modules"]

Mode = Literal["run", "call"]
MODES = ("auto", "run", "call")
_RUNS = ("torch",)
"""The frameworks whose steps a run can observe."""


def differentiates(tree: ast.Module) -> bool:
    """Whether the file differentiates a PyTorch loss itself: ``X.backward()``,
    ``torch.autograd.grad(...)``, ``torch.autograd.backward(...)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr == "backward" and not (isinstance(func.value, ast.Name) and func.value.id == "self"):
                return True
            if (
                func.attr == "grad"
                and isinstance(func.value, ast.Attribute)
                and func.value.attr == "autograd"
            ):
                return True
    return False


def local_modules(tree: ast.Module, folder: Path, depth: int = 2) -> list[Path]:
    """The files of ``folder`` the module imports (``import trainer``, ``from train import
    mse_trainer``, ``from .losses import Loss``), and theirs, ``depth`` levels down."""
    found: list[Path] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom):  # from . import losses
            names = [a.name for a in node.names]
        for name in names:
            base = folder.joinpath(*name.split("."))
            for path in (base.with_suffix(".py"), base / "__init__.py"):
                if path.is_file() and path not in found:
                    found.append(path)
    if depth > 1:
        for path in list(found):
            try:
                inner = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
            except SyntaxError:
                continue
            found += [p for p in local_modules(inner, folder, depth - 1) if p not in found]
    return found


def _imported_differentiates(tree: ast.Module, folder: Path) -> bool:
    for path in local_modules(tree, folder):
        try:
            if differentiates(ast.parse(path.read_text(encoding="utf-8", errors="replace"))):
                return True
        except SyntaxError:
            continue
    return False


def choose_mode(
    requested: str, tree: ast.Module, framework: str, *, named: bool, folder: Path | None = None
) -> Mode:
    """The mode of a check: ``requested`` (``auto``, ``run`` or ``call``) for a file in
    ``framework`` whose loss the user ``named`` (``FILE:NAME``) or not, in ``folder`` (where the
    modules it imports of its own are).

    Raises:
        InvalidArgumentError: ``run`` asked for a framework a run cannot observe.
    """
    if requested not in MODES:
        raise InvalidArgumentError(
            f"Expected --mode to be one of {', '.join(MODES)} but got mode={requested!r}. Try --mode auto."
        )
    if requested == "run":
        if framework not in _RUNS:
            raise InvalidArgumentError(
                f"Expected a PyTorch file for --mode run (a run observes PyTorch steps only) but got "
                f"mode='run' for a {framework} file. Try --mode call."
            )
        return "run"
    if requested == "call" or named or framework not in _RUNS:
        return "call"
    if differentiates(tree):
        return "run"
    return "run" if folder is not None and _imported_differentiates(tree, folder) else "call"
