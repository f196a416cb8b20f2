"""The types of JSON values, for the ``to_json`` methods of result types (the ``--json``
objects, the reports' ``metrics.json``, the check worker's messages)."""

from __future__ import annotations

__all__ = ["Json", "JsonObject"]

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]
"""A value JSON can carry."""
JsonObject = dict[str, Json]
"""A JSON object."""
