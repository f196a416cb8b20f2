"""The types of JSON values, for the ``to_json`` methods of result types (the ``--json``
objects, the reports' ``metrics.json``, the check worker's messages)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["Json", "JsonObject"]

Json = None | bool | int | float | str | Sequence["Json"] | Mapping[str, "Json"]
"""A value JSON can carry (lists and tuples, dicts with text keys)."""
JsonObject = dict[str, Json]
"""A JSON object."""
