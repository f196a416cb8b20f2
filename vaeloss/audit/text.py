"""How the audit writes numbers for people (one home for each format)."""

from __future__ import annotations

__all__ = ["format_seconds"]


def format_seconds(t: float) -> str:
    """``0.48 s``, ``13 s``.

    >>> format_seconds(0.48), format_seconds(12.6), format_seconds(304.2)
    ('0.48 s', '13 s', '304 s')
    """
    return f"{t:.2g} s" if t < 10 else f"{t:.0f} s"
