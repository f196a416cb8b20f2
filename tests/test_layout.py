"""The layout the README describes, kept: no import cycles between vaeloss's modules, no
function longer than a screen, and only the CLI prints."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "vaeloss"
MAX_FUNCTION_LINES = 80


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text())


def _type_checking(node):
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _top_level_imports(tree, module, is_package):
    """vaeloss modules imported when ``module`` is (not in functions, not for type checking)."""
    out = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if _type_checking(node):
            continue
        if isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "handlers", []) + getattr(node, "finalbody", [])
        elif isinstance(node, ast.ExceptHandler):
            todo += node.body
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("vaeloss")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("vaeloss"):
                out.add(node.module)
    return out - {module}


def _all_imports(tree, module):
    """vaeloss modules ``module`` imports anywhere, in functions too (not for type checking):
    ``from vaeloss.a import b`` counts ``vaeloss.a`` and, where it is one, the module ``vaeloss.a.b``."""
    typing_only = {id(n) for node in ast.walk(tree) if _type_checking(node) for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("vaeloss")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("vaeloss"):
                out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out - {module}


def _graph(anywhere=False):
    names = {}
    graph = {}
    for name, path, tree in _modules():
        names[name] = path
        graph[name] = (
            _all_imports(tree, name)
            if anywhere
            else _top_level_imports(tree, name, path.name == "__init__.py")
        )
    return {n: {m for m in deps if m in names} for n, deps in graph.items()}


@pytest.mark.parametrize("anywhere", [False, True], ids=["top-level", "in-functions-too"])
def test_no_import_cycles(anywhere):
    """A late import inside a function hides a cycle from Python, not from a reader: result.py's
    import of seeds.spreads and backend.py's of each framework's backend were two."""
    graph = _graph(anywhere)
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                cycles.append(stack[stack.index(m) :] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert cycles == []


def test_no_function_is_longer_than_a_screen():
    long = [
        f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}"
        f" ({node.end_lineno - node.lineno + 1} lines)"
        for _, path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


@pytest.mark.parametrize(
    "package", ["check", "audit", "engine", "objective", "usercode", "metrics", "integrations"]
)
def test_only_the_cli_prints(package):
    printing = [
        f"{path.relative_to(ROOT.parent)}:{node.lineno}"
        for _, path, tree in _modules()
        if path.is_relative_to(ROOT / package)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]
    assert printing == []
