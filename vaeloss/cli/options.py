"""Options shared by the commands, declared once: the sizes B, D, k, ``NAME=VALUE`` values,
and ``--json``."""

from __future__ import annotations

import argparse

__all__ = ["add_assignments", "add_json", "add_sizes", "positive_int"]


def positive_int(text: str) -> int:
    """An argparse type for a count >= 1.

    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"Expected an integer >= 1 but got {text!r}")
    return value


def add_sizes(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    batch: int | None,
    latent: int | None,
    data_dim: bool = True,
    batch_help: str | None = None,
    latent_help: str | None = None,
) -> None:
    """``-B/--batch-size``, ``-D/--data-dim`` (unless ``data_dim=False``) and ``-k/--latent-dim``,
    each a count >= 1, with these defaults (None: the command decides)."""
    shown = "" if batch is None else f" ({batch})"
    p.add_argument(
        "--batch-size", "-B", type=positive_int, default=batch, help=batch_help or f"batch size B{shown}"
    )
    if data_dim:
        p.add_argument("--data-dim", "-D", type=positive_int, default=None, help="data dim D (784)")
    shown = "" if latent is None else f" ({latent})"
    p.add_argument(
        "--latent-dim", "-k", type=positive_int, default=latent, help=latent_help or f"latent dim k{shown}"
    )


def add_assignments(
    p: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, help_text: str, *, dotted: bool = False
) -> None:
    """A repeatable ``--flag NAME=VALUE`` (a literal, else an expression in the user's module);
    ``dotted``: NAME may be ``OBJECT.ATTRIBUTE`` of a module-level object (``args.kl_weight``)."""
    from vaeloss.usercode.construct import assignment, dotted_assignment

    kind = dotted_assignment if dotted else assignment
    p.add_argument(flag, type=kind, action="append", default=[], metavar="NAME=VALUE", help=help_text)


def add_json(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
