"""Which way a check reads the loss: ``run`` (run the user's step and observe it,
:mod:`vaeloss.check.observe`) or ``call`` (call the candidates, :mod:`vaeloss.check.probe`).

``auto`` runs a PyTorch file that differentiates a loss itself (``loss.backward()``,
``torch.autograd.grad``) when the user did not name the loss; everything else is called.

>>> import ast
>>> choose_mode("auto", ast.parse("loss = f(x)\\nloss.backward()"), "torch", named=False)
'run'
>>> choose_mode("auto", ast.parse("def loss(r, x, m, v): return r"), "torch", named=False)
'call'
"""

from __future__ import annotations

import ast
from typing import Literal

from vaeloss.errors import InvalidArgumentError

__all__ = ["MODES", "Mode", "choose_mode", "differentiates"]

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


def choose_mode(requested: str, tree: ast.Module, framework: str, *, named: bool) -> Mode:
    """The mode of a check: ``requested`` (``auto``, ``run`` or ``call``) for a file in
    ``framework`` whose loss the user ``named`` (``FILE:NAME``) or not.

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
    return "run" if differentiates(tree) else "call"
