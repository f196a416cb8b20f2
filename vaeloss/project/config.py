"""A project's ``[tool.vaeloss]`` table in its ``pyproject.toml``::

    [tool.vaeloss]
    batch-size = 128          # or B; likewise data-dim (D), latent-dim (k)
    input-shape = [1, 28, 28]
    timeout = 60
    exclude = ["experiments/old/*", "*_scratch.py"]
    ignore = ["formula-at-these-sizes"]   # finding codes not reported

    [tool.vaeloss.targets."models/vae.py"]
    name = "VAE.loss_function"  # the loss to check in that file (default: the one check picks)
    args = { kld_weight = 0.00025 }
    init = { beta = 4.0 }
    expect-beta = 1.0

A key vaeloss does not know is an error naming it (a typo must not silently do nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from vaeloss.errors import InvalidArgumentError

__all__ = ["ProjectConfig", "TargetConfig", "read_config"]

_SIZE_KEYS = {"batch-size": "B", "data-dim": "D", "latent-dim": "k"}
_TOP_KEYS = {*_SIZE_KEYS, *_SIZE_KEYS.values(), "input-shape", "timeout", "exclude", "ignore", "targets"}
_TARGET_KEYS = {"name", "args", "init", "expect-beta"}


@dataclass(frozen=True)
class TargetConfig:
    """What to check in one file: the loss's name, values of its arguments and of its
    constructor's, and the beta it must have."""

    name: str | None = None
    args: dict[str, object] = field(default_factory=dict)
    init: dict[str, object] = field(default_factory=dict)
    expect_beta: float | None = None


@dataclass(frozen=True)
class ProjectConfig:
    """The project's settings (None: not set; the command line's or vaeloss's default holds)."""

    sizes: dict[str, int] = field(default_factory=dict)  # "B", "D", "k"
    input_shape: tuple[int, ...] | None = None
    timeout: float | None = None
    exclude: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    source: Path | None = None

    def target(self, path: str) -> TargetConfig:
        """The settings of the file at ``path`` (relative to the root, ``/`` separated)."""
        return self.targets.get(path, TargetConfig())


def _bad(source: Path, key: str, value: object, expected: str, example: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Expected {expected} for [tool.vaeloss] {key} in {source} but got {key}={value!r}. Try {example}."
    )


def _unknown(source: Path, where: str, keys: set[str], known: set[str]) -> None:
    unknown = sorted(keys - known)
    if unknown:
        raise InvalidArgumentError(
            f"Expected only keys vaeloss knows in [{where}] of {source} but got {unknown[0]!r}. Try one "
            f"of: {', '.join(sorted(known))}."
        )


def _sizes(source: Path, table: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for long, short in _SIZE_KEYS.items():
        if long in table and short in table:
            raise _bad(source, short, table[short], f"one of {long} and {short}", f"{long} = {table[long]}")
        key = long if long in table else short
        if key in table:
            value = table[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _bad(source, key, value, "an integer >= 1", f"{key} = 128")
            out[short] = value
    return out


def _strings(source: Path, table: dict[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(source, key, value, "a list of strings", f'{key} = ["..."]')
    return tuple(value)


def _target(source: Path, path: str, table: object) -> TargetConfig:
    where = f'tool.vaeloss.targets."{path}"'
    if not isinstance(table, dict):
        raise _bad(source, f'targets."{path}"', table, "a table", f'[{where}] with name = "loss_function"')
    _unknown(source, where, set(table), _TARGET_KEYS)
    for key in ("args", "init"):
        if not isinstance(table.get(key, {}), dict):
            raise _bad(source, key, table[key], "a table of NAME = VALUE", f"{key} = {{ beta = 4.0 }}")
    expect = table.get("expect-beta")
    if expect is not None and (not isinstance(expect, (int, float)) or isinstance(expect, bool)):
        raise _bad(source, "expect-beta", expect, "a number", "expect-beta = 1.0")
    name = table.get("name")
    if name is not None and not isinstance(name, str):
        raise _bad(source, "name", name, "a string", 'name = "loss_function"')
    return TargetConfig(name, dict(table.get("args", {})), dict(table.get("init", {})), expect)


def _codes(source: Path, table: dict[str, Any]) -> tuple[str, ...]:
    from vaeloss.check.findings import CODES

    codes = _strings(source, table, "ignore")
    for code in codes:
        if code not in CODES:
            raise _bad(source, "ignore", code, "a finding code", f"one of: {', '.join(sorted(CODES))}")
    return codes


def _parse(source: Path, table: dict[str, Any]) -> ProjectConfig:
    _unknown(source, "tool.vaeloss", set(table), _TOP_KEYS)
    shape = table.get("input-shape")
    if shape is not None and (
        not isinstance(shape, list) or not all(isinstance(v, int) and v > 0 for v in shape)
    ):
        raise _bad(source, "input-shape", shape, "a list of sizes", "input-shape = [1, 28, 28]")
    timeout = table.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise _bad(source, "timeout", timeout, "a number of seconds > 0", "timeout = 60")
    targets = table.get("targets", {})
    if not isinstance(targets, dict):
        raise _bad(source, "targets", targets, "a table of files", '[tool.vaeloss.targets."vae.py"]')
    return ProjectConfig(
        sizes=_sizes(source, table),
        input_shape=None if shape is None else tuple(shape),
        timeout=None if timeout is None else float(timeout),
        exclude=_strings(source, table, "exclude"),
        ignore=_codes(source, table),
        targets={path: _target(source, path, t) for path, t in targets.items()},
        source=source,
    )


def read_config(root: Path) -> ProjectConfig:
    """The ``[tool.vaeloss]`` table of ``root/pyproject.toml`` (empty when there is none).

    Raises:
        InvalidArgumentError: the file is not valid TOML, or the table has a key or value
            vaeloss does not take.
    """
    source = root / "pyproject.toml"
    if not source.is_file():
        return ProjectConfig()
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgumentError(
            f"Expected a readable pyproject.toml but got {source}: {exc}. Try fixing it, or "
            f"vaeloss check with the files as arguments from another folder."
        ) from None
    table = data.get("tool", {}).get("vaeloss")
    if table is None:
        return ProjectConfig(source=source)
    if not isinstance(table, dict):
        raise _bad(source, "tool.vaeloss", table, "a table", "[tool.vaeloss]")
    return _parse(source, table)
