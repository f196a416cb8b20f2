"""Doctest namespace, and keep pytest away from entry points that run on import."""

import math

import pytest
import torch

collect_ignore = [
    "vaeloss/__main__.py",
    "cli.py",
    "bench",
    "scripts",
    "tests/check/real",
    "tests/check/losses",
    "tests/check/models",
    "tests/audit/models",
]


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict) -> None:
    doctest_namespace["torch"] = torch
    doctest_namespace["math"] = math
