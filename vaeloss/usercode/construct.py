"""Building a user's class or factory from ``--init NAME=VALUE`` values (``check`` and ``audit``).

A value is a Python literal, else an expression in the user's module namespace
(``--init config="VAEConfig(latent_dim=16)"``), else the plain text.
"""

from __future__ import annotations

import argparse
import ast
import inspect
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["BuildError", "assignment", "build", "evaluate_value", "missing_arguments"]


class BuildError(Exception):
    """The class or factory cannot be built; the message says why and what to pass."""


def evaluate_value(text: str, namespace: Mapping[str, Any]) -> Any:
    """``--init``/``--arg`` value: a literal, else an expression in ``namespace``, else the text.

    >>> evaluate_value("0.5", {}), evaluate_value("H", {}), evaluate_value("n + 1", {"n": 1})
    (0.5, 'H', 2)
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return eval(text, dict(namespace))  # noqa: S307 - the user's own command-line value
    except Exception:  # noqa: BLE001 - not an expression there: the plain text
        return text


def assignment(text: str) -> tuple[str, str]:
    """An argparse type for ``NAME=VALUE`` (``--init``, ``--arg``).

    >>> assignment("latent_dim=16")
    ('latent_dim', '16')
    """
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"Expected NAME=VALUE (e.g. latent_dim=16) but got {text!r}")
    return name, value


def dotted_assignment(text: str) -> tuple[str, str]:
    """:func:`assignment`, where NAME may also be an attribute of a module-level object
    (``--arg args.kl_weight=0.5``: the value the loss reads from argparse's namespace).

    >>> dotted_assignment("args.kl_weight=0.5")
    ('args.kl_weight', '0.5')
    """
    name, sep, value = text.partition("=")
    if not sep or not all(part.isidentifier() for part in name.split(".")):
        raise argparse.ArgumentTypeError(
            f"Expected NAME=VALUE or OBJECT.ATTRIBUTE=VALUE (e.g. beta=4, args.kl_weight=0.5) "
            f"but got {text!r}"
        )
    return name, value


def missing_arguments(fn: Callable[..., Any], given: Mapping[str, Any]) -> list[str]:
    """The required parameters of ``fn`` (a class or function) that ``given`` does not name."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in given
    ]


def build(what: Callable[..., Any], label: str, init: Mapping[str, Any]) -> Any:
    """Call a class or factory with ``init``; missing required arguments are named."""
    missing = missing_arguments(what, init)
    if missing:
        flags = " ".join(f"--init {m}=VALUE" for m in missing)
        raise BuildError(
            f"Expected values for the required argument(s) {', '.join(missing)} of {label} but got "
            f"none. Try {flags} (a literal, or an expression in the module such as --init "
            f'config="Config(latent_dim=16)").'
        )
    try:
        return what(**init)
    except Exception as exc:  # noqa: BLE001 - the user's constructor
        raise BuildError(
            f"building {label} with {dict(init) or 'its defaults'} raised {type(exc).__name__}: {exc}"
        ) from None
