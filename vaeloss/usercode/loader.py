"""Load a user's file for a check without running it as a script (runs in the worker process).

Rules, statement by statement at the top level (and inside top-level ``if`` and ``try``):

* imports, function and class definitions, assignments, ``if`` and ``try`` blocks run;
* loops, ``with`` blocks, ``if __name__ == "__main__":`` and bare calls (``train()``,
  ``plt.show()``) do not, except calls that configure the interpreter (``sys.path.append``,
  ``warnings.filterwarnings``, ``torch.manual_seed``, ``matplotlib.use``...), build an
  argument parser (``parser.add_argument``) or fill a container (``config.update``);
* ``argparse`` parsing returns the parser's defaults instead of reading the worker's argv;
* a statement that raises, or runs past :data:`STATEMENT_BUDGET` seconds (imports excepted),
  is skipped and recorded, so that a loss needing a name it would have made can say which
  statement and why (:meth:`Loaded.explain_name`);
* everything runs inside the sandbox: no file writes, processes or network.

A file inside a package is loaded as a member of its package (parents first, the same way),
so relative imports work. ``exec_module=True`` runs the whole file instead (still not as
``__main__``, still sandboxed).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import linecache
import signal
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaeloss.jsontypes import JsonObject
from vaeloss.usercode import sandbox
from vaeloss.usercode.sourcefile import SourceFile, read_source_file

__all__ = [
    "STATEMENT_BUDGET",
    "BudgetExpired",
    "Loaded",
    "Skipped",
    "argparse_defaults",
    "load_module",
    "put_first_on_path",
    "time_budget",
]

STATEMENT_BUDGET = 3.0
"""Seconds a top-level statement (other than an import) may run before it is skipped."""

_CONFIG_CALLS = (
    "sys.path.",
    "os.environ.",
    "warnings.",
    "logging.",
    "torch.set_default_dtype",
    "torch.set_default_tensor_type",
    "torch.manual_seed",
    "torch.set_printoptions",
    "np.random.seed",
    "numpy.random.seed",
    "random.seed",
    "matplotlib.use",
    "mpl.use",
    "sns.set",
)


@dataclass(frozen=True)
class Skipped:
    """A top-level statement that was not run (or failed), and the names it would have made."""

    line: int
    code: str
    reason: str
    names: tuple[str, ...]
    error: str | None = None  # the exception it raised, when it failed

    def to_json(self) -> JsonObject:
        return {"line": self.line, "code": self.code, "reason": self.reason, "error": self.error}

    @classmethod
    def from_json(cls, data: JsonObject) -> Skipped:
        """The statement from :meth:`to_json` (the names it would have made are not kept)."""
        line, error = data["line"], data["error"]
        assert isinstance(line, int) and (error is None or isinstance(error, str))
        return cls(line, str(data["code"]), str(data["reason"]), (), error)


@dataclass
class Loaded:
    """A loaded module and what of its file was not run."""

    module: types.ModuleType
    source: SourceFile
    skipped: list[Skipped] = field(default_factory=list)

    def explain_name(self, name: str, depth: int = 0) -> str | None:
        """Why ``name`` is not defined: the skipped statement that would have made it (and,
        if that one failed on another missing name, why that one is missing too)."""
        for s in self.skipped:
            if name in s.names:
                where = self.source.where(s.line)
                text = f"{name!r} would have been made by {where} (`{s.code}`), which was not run: {s.reason}"
                missing = _missing_module(s.error)
                if missing:
                    text += (
                        f". The module {missing!r} is not installed where vaeloss runs: install vaeloss "
                        f"into your project's environment (pip install vaeloss there), or install "
                        f"{missing} here"
                    )
                inner = _missing_name(s.error)
                if inner and inner != name and depth < 3:
                    deeper = self.explain_name(inner, depth + 1)
                    if deeper:
                        text += f"; {deeper}"
                return text
        return None


def _missing_module(error: str | None) -> str | None:
    prefix = "ModuleNotFoundError: No module named '"
    if error and error.startswith(prefix):
        return error[len(prefix) :].split("'")[0].split(".")[0]
    return None


def _missing_name(error: str | None) -> str | None:
    prefix = "NameError: name '"
    if error and error.startswith(prefix):
        return error[len(prefix) :].split("'")[0]
    return None


class BudgetExpired(Exception):
    """A time budget of :func:`time_budget` ran out."""


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Raise :class:`BudgetExpired` in the main thread after ``seconds`` (None: no budget)."""
    if seconds is None:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise BudgetExpired

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_SAFE_METHODS = {
    "add_argument",
    "add_argument_group",
    "add_mutually_exclusive_group",
    "set_defaults",
    "add_subparsers",
    "add_parser",
    "append",
    "extend",
    "insert",
    "update",
    "setdefault",
}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return ""


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        sides = [test.left, test.comparators[0]]
        names = {s.id for s in sides if isinstance(s, ast.Name)}
        values = {s.value for s in sides if isinstance(s, ast.Constant)}
        return names == {"__name__"} and values == {"__main__"}
    return False


def _bound_names(node: ast.AST) -> tuple[str, ...]:
    names: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.append(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in sub.names if a.name != "*"]
    return tuple(dict.fromkeys(names))


def _first_line(node: ast.stmt, text: str) -> str:
    segment = ast.get_source_segment(text, node) or ""
    line = segment.splitlines()[0] if segment else type(node).__name__
    return line if len(line) <= 80 else line[:77] + "..."


def _not_run(node: ast.stmt) -> str | None:
    """Why a statement is not run at all (None: it is run)."""
    if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
        return "a top-level loop is not run"
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return "a top-level `with` block is not run"
    if isinstance(node, ast.If) and _is_main_guard(node):
        return "the `if __name__ == '__main__':` block is not run"
    if isinstance(node, ast.Expr):
        if isinstance(node.value, ast.Constant):
            return "a bare value"
        name = _dotted(node.value.func) if isinstance(node.value, ast.Call) else ""
        if name and any(name.startswith(p) for p in _CONFIG_CALLS):
            return None
        if "." in name and name.rpartition(".")[2] in _SAFE_METHODS:
            return None
        return "a top-level call or expression is not run"
    if isinstance(node, (ast.Raise, ast.Match)):
        return "not run at the top level"
    return None


class _Filter:
    """Splits top-level statements into the ones to run and the skipped ones."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.skipped: list[Skipped] = []

    def body(self, nodes: list[ast.stmt]) -> list[ast.stmt]:
        kept: list[ast.stmt] = []
        for node in nodes:
            why = _not_run(node)
            if why is not None:
                if why != "a bare value":
                    self.skipped.append(
                        Skipped(node.lineno, _first_line(node, self.text), why, _bound_names(node))
                    )
                continue
            if isinstance(node, ast.If):
                node.body = self.body(node.body) or [ast.Pass()]
                node.orelse = self.body(node.orelse)
            elif isinstance(node, ast.Try):
                node.body = self.body(node.body) or [ast.Pass()]
                for handler in node.handlers:
                    handler.body = self.body(handler.body) or [ast.Pass()]
                node.orelse = self.body(node.orelse)
                node.finalbody = self.body(node.finalbody)
            kept.append(node)
        return kept


@contextmanager
def argparse_defaults(argv: tuple[str, ...] = ()) -> Iterator[None]:
    """``ArgumentParser.parse_known_args()`` without arguments parses ``argv`` (the script's
    arguments the user gave, ``vaeloss check FILE -- ARGS``), else returns the defaults; a
    required argument not given gets its default (None) instead of exiting."""
    original = argparse.ArgumentParser.parse_known_args

    def defaults_only(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        try:
            return original(self, list(argv) if args is None else args, namespace)
        except SystemExit:  # a required argument: give every argument its default
            ns = namespace if namespace is not None else argparse.Namespace()
            for action in self._actions:
                if action.dest is not argparse.SUPPRESS and not hasattr(ns, action.dest):
                    setattr(ns, action.dest, action.default)
            return ns, []

    setattr(argparse.ArgumentParser, "parse_known_args", defaults_only)  # noqa: B010 - a patch
    try:
        yield
    finally:
        setattr(argparse.ArgumentParser, "parse_known_args", original)  # noqa: B010


def _run(nodes: list[ast.stmt], module: types.ModuleType, source: SourceFile, skipped: list[Skipped]) -> None:
    for node in nodes:
        budget = None if isinstance(node, (ast.Import, ast.ImportFrom)) else STATEMENT_BUDGET
        code = compile(ast.Module(body=[node], type_ignores=[]), str(source.path), "exec")
        try:
            with time_budget(budget):
                exec(code, module.__dict__)
        except BudgetExpired:
            why = f"it ran for more than {STATEMENT_BUDGET:g} s (training or data loading?)"
            skipped.append(Skipped(node.lineno, _first_line(node, source.text), why, _bound_names(node)))
        except (Exception, SystemExit) as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            skipped.append(
                Skipped(
                    node.lineno,
                    _first_line(node, source.text),
                    f"it raised {error}",
                    _bound_names(node),
                    error,
                )
            )


def _register_source(source: SourceFile) -> None:
    """Make the Python text of a notebook what ``inspect.getsource`` reads for its functions
    (else it would read lines of the notebook's JSON)."""
    if source.is_notebook:
        lines = source.text.splitlines(keepends=True)
        linecache.cache[str(source.path)] = (len(source.text), None, lines, str(source.path))


def _execute(module: types.ModuleType, source: SourceFile, *, exec_module: bool) -> list[Skipped]:
    _register_source(source)
    tree = ast.parse(source.text, filename=str(source.path))
    if exec_module:
        exec(compile(tree, str(source.path), "exec"), module.__dict__)
        return []
    filt = _Filter(source.text)
    nodes = filt.body(tree.body)
    ast.fix_missing_locations(tree)
    skipped = filt.skipped
    skipped += [
        Skipped(line, code, f"the cell does not parse ({why}): left out, the other cells are loaded", ())
        for line, code, why in source.broken
    ]
    _run(nodes, module, source, skipped)
    return sorted(skipped, key=lambda s: s.line)


def _new_module(name: str, path: Path, *, package: bool) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = str(path)
    if package:
        module.__path__ = [str(path.parent)]
        module.__package__ = name
    else:
        module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    return module


def _load_packages(package: str, top: Path) -> None:
    """Import the packages above the module, outermost first, each loaded by the same rules
    (a package ``__init__`` that fails on one import keeps the rest)."""
    parts = package.split(".")
    folder = top
    for i, part in enumerate(parts):
        name = ".".join(parts[: i + 1])
        folder = folder / part
        if name in sys.modules:
            continue
        init = folder / "__init__.py"
        module = _new_module(name, init, package=True)
        if i:
            setattr(sys.modules[".".join(parts[:i])], part, module)
        _execute(module, read_source_file(init), exec_module=False)


def put_first_on_path(entries: tuple[str, ...]) -> None:
    """Put folders first on ``sys.path``, in their order (each once)."""
    for entry in reversed(entries):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def load_module(
    path: Path,
    module_name: str,
    search_path: tuple[str, ...],
    *,
    exec_module: bool = False,
    argv: tuple[str, ...] = (),
) -> Loaded:
    """Load the user's file by the rules of this module's docstring, in the sandbox.

    Args:
        path: the ``.py`` or ``.ipynb`` file.
        module_name: the name to load it as (``pkg.sub.mod`` inside a package).
        search_path: folders to put first on ``sys.path``.
        exec_module: run every statement (``--exec-module``).
        argv: the script's arguments (its argparse parses them; else its defaults).
    """
    put_first_on_path(search_path)
    sys.argv = [str(path), *argv]
    source = read_source_file(path)
    package = module_name.rpartition(".")[0]
    with sandbox.enforced(), argparse_defaults(argv):
        if package:
            _load_packages(package, Path(search_path[0]))
        if module_name in sys.modules and getattr(sys.modules[module_name], "__file__", None) == str(path):
            return Loaded(sys.modules[module_name], source)  # imported by its package's __init__
        module = _new_module(module_name, path, package=path.name == "__init__.py")
        if package:
            setattr(sys.modules[package], module_name.rpartition(".")[2], module)
        skipped = _execute(module, source, exec_module=exec_module)
    importlib.invalidate_caches()
    return Loaded(module, source, skipped)
