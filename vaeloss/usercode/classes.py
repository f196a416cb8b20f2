"""A class named ``FILE:Class`` (or ``pkg.module:Class``), loaded by the rules of
:mod:`vaeloss.usercode.loader`: a user's VAE for ``vaeloss audit --model``."""

from __future__ import annotations

import sys
from typing import Any

from torch import nn

from vaeloss.errors import InvalidArgumentError, UserCodeError
from vaeloss.usercode.loader import load_module
from vaeloss.usercode.target import resolve_target

__all__ = ["user_class"]


def user_class(spec: str) -> tuple[type[nn.Module], dict[str, Any]]:
    """The ``nn.Module`` class named by ``spec`` and its module's namespace.

    Raises:
        InvalidArgumentError: ``spec`` is not of the form ``FILE:Class``.
        UserCodeError: the file is missing or fails to load, or has no such module class.
    """
    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise InvalidArgumentError(
            f"Expected --model mlp|conv|linear|FILE:Class but got model={spec!r}. Try --model my_vae.py:VAE."
        )
    try:
        target = resolve_target(spec)
    except UserCodeError:
        raise UserCodeError(
            f"Expected --model FILE:Class with an existing file but got model={spec!r}: no file "
            f"{where!r}. Try --model path/to/my_vae.py:VAE."
        ) from None
    argv = list(sys.argv)
    try:
        loaded = load_module(target.path, target.module, target.search_path)
    except Exception as exc:  # noqa: BLE001 - the user's file
        raise UserCodeError(
            f"Expected {target.path.name} to load but it raised {type(exc).__name__}: {exc}."
        ) from None
    finally:
        sys.argv = argv
    namespace = vars(loaded.module)
    cls = namespace.get(name)
    if cls is None:
        why = loaded.explain_name(name)
        raise UserCodeError(
            f"Expected a class named {name} in {target.path.name} but there is none"
            + (f" ({why})" if why else "")
            + ". Try --model FILE:Class with the name of your VAE class."
        )
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise UserCodeError(
            f"Expected {name} in {target.path.name} to be an nn.Module class but it is "
            f"{type(cls).__name__}. Try --model FILE:Class with your VAE class."
        )
    return cls, namespace
