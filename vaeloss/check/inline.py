"""Losses written inline: computed in a training loop or step and used there (``loss.backward()``,
``tape.gradient(loss, ...)``), never defined as a function. Nothing here executes the file.

:func:`find_inline_losses` finds each ``NAME.backward()`` inside a loop (at the top level of a
script, or in a function such as ``train(model, loader, optimizer, beta=4.0)``) and each
``tape.gradient(NAME, ...)`` (also in a Keras ``train_step``, under its ``with
tf.GradientTape()``) and takes the
statements before it, in the same block, that ``NAME`` depends on: a backward slice that stops
at the model's outputs (``recon, mu, logvar = model(x)``: their names become inputs) and leaves
out device moves (``x = x.to(device)``), the data loading, the optimizer and everything else.
The slice becomes a function of the names it reads that the loop or the function binds (the
model's outputs, the batch, the function's own arguments with their defaults); the names it
reads from the module (``args``, ``F``) stay the module's. The probe then checks that function
as it checks a written one.

>>> code = '''
... for x in loader:
...     recon, mu, logvar = model(x)
...     bce = F.binary_cross_entropy(recon, x, reduction="sum")
...     kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
...     loss = bce + args.beta * kld
...     optimizer.zero_grad()
...     loss.backward()
... '''
>>> [found] = find_inline_losses(ast.parse(code))
>>> found.lines, found.params
((4, 6), ('logvar', 'mu', 'recon', 'x'))
>>> print(found.source, end="")
def _vaeloss_inline_4(logvar, mu, recon, x):
    bce = F.binary_cross_entropy(recon, x, reduction='sum')
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    loss = bce + args.beta * kld
    return loss
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

__all__ = ["PREFIX", "InlineLoss", "find_inline_losses"]

PREFIX = "_vaeloss_inline_"
"""The start of the name of a function made of a loss computed inline."""

_MOVES = {"to", "cuda", "cpu", "float", "double", "detach", "contiguous"}
_MODEL_WORDS = ("model", "vae", "net", "autoencoder", "encoder", "decoder", "forward")


@dataclass(frozen=True)
class InlineLoss:
    """A loss computed inline, as a function the probe can call.

    Attributes:
        name: the identifier of the function made of it (``_vaeloss_inline_<first line>``).
        lines: its first and last line in the file.
        where: in which loop it is, for people (``in the loop of train()``).
        params: the names it takes (the model's outputs, the batch, the function's arguments).
        source: the function's Python source.
    """

    name: str
    lines: tuple[int, int]
    where: str
    params: tuple[str, ...]
    source: str
    scope: str | None = None  # the function or Class.method it is in (None: the top level)
    nodes: tuple[ast.stmt, ...] = field(default=(), compare=False, repr=False)

    def describe(self) -> str:
        first, last = self.lines
        span = f"line {first}" if first == last else f"lines {first}-{last}"
        return f"the loss computed inline at {span}, {self.where}"


def _stored(nodes: list[ast.stmt]) -> set[str]:
    return {
        n.id for s in nodes for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def _loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _backward_name(stmt: ast.stmt) -> str | None:
    """``NAME`` of a statement ``NAME.backward(...)``."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if isinstance(func, ast.Attribute) and func.attr == "backward" and isinstance(func.value, ast.Name):
            return func.value.id
    return None


def _gradient_name(stmt: ast.stmt) -> str | None:
    """``NAME`` of ``grads = tape.gradient(NAME, ...)`` (TensorFlow's GradientTape)."""
    value = stmt.value if isinstance(stmt, (ast.Assign, ast.Expr)) else None
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "gradient"
    ):
        if value.args and isinstance(value.args[0], ast.Name):
            return value.args[0].id
    return None


def _flat(block: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a block with those of its ``with`` blocks in their place (a loss
    computed under ``with tf.GradientTape() as tape:``)."""
    out: list[ast.stmt] = []
    for stmt in block:
        out += _flat(stmt.body) if isinstance(stmt, (ast.With, ast.AsyncWith)) else [stmt]
    return out


def _is_model_output(stmt: ast.Assign) -> bool:
    """Whether an assignment binds the model's outputs (where the slice stops)."""
    if not isinstance(stmt.value, ast.Call):
        return False
    if any(isinstance(t, (ast.Tuple, ast.List)) for t in stmt.targets):
        return True
    func = ast.unparse(stmt.value.func).lower()
    return any(w in func for w in _MODEL_WORDS)


def _is_move(stmt: ast.Assign) -> bool:
    """``x = x.to(device)`` and the like: the same tensor, elsewhere."""
    value = stmt.value
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in _MOVES
        and isinstance(value.func.value, ast.Name)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and stmt.targets[0].id == value.func.value.id
    )


def _slice(block: list[ast.stmt], target: str) -> list[ast.stmt]:
    """The statements of ``block`` that ``target`` depends on, back to the model's outputs."""
    needed = {target}
    kept: list[ast.stmt] = []
    for stmt in reversed(_flat(block)):
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = _stored([stmt])
            if not targets & needed:
                continue
            if isinstance(stmt, ast.Assign) and (_is_model_output(stmt) or _is_move(stmt)):
                continue  # its names are inputs of the loss
            kept.append(stmt)
            if not isinstance(stmt, ast.AugAssign):
                needed -= targets
            needed |= _loaded(stmt.value) if stmt.value is not None else set()
    return list(reversed(kept))


def _loss_uses(body: list[ast.stmt], in_loop: bool = False) -> list[tuple[list[ast.stmt], bool, str]]:
    """(the statements before it, whether in a loop, the name) of each ``NAME.backward()`` in a loop
    and each ``tape.gradient(NAME, ...)`` (in a loop or not: a Keras ``train_step``)."""
    found = []
    for i, stmt in enumerate(body):
        name = _backward_name(stmt) if in_loop else None
        name = name or _gradient_name(stmt)
        if name is not None:
            found.append((body[:i], in_loop, name))
        for part in ("body", "orelse", "finalbody"):
            inner = getattr(stmt, part, None)
            if isinstance(inner, list) and not isinstance(
                stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            ):
                found += _loss_uses(inner, in_loop or isinstance(stmt, (ast.For, ast.While)))
        for handler in getattr(stmt, "handlers", []):
            found += _loss_uses(handler.body, in_loop)
    return found


def _defaults(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, ast.expr]:
    args = fn.args.posonlyargs + fn.args.args
    out = dict(zip([a.arg for a in args[len(args) - len(fn.args.defaults) :]], fn.args.defaults))
    out.update({a.arg: d for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults) if d is not None})
    return {k: v for k, v in out.items() if isinstance(v, ast.Constant)}


def _scopes(
    tree: ast.Module,
) -> list[tuple[list[ast.stmt], ast.FunctionDef | ast.AsyncFunctionDef | None, str]]:
    out: list[tuple[list[ast.stmt], ast.FunctionDef | ast.AsyncFunctionDef | None, str]] = [
        (tree.body, None, "")
    ]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node.body, node, node.name))
        elif isinstance(node, ast.ClassDef):
            funcs = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            out += [(f.body, f, f"{node.name}.{f.name}") for f in funcs]
    return out


def find_inline_losses(tree: ast.Module) -> list[InlineLoss]:
    """Every loss computed inline and used by ``.backward()`` in a loop or by
    ``tape.gradient`` (see the module docstring)."""
    found: list[InlineLoss] = []
    for body, fn, scope in _scopes(tree):
        local = (
            (_stored(body) | {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}) if fn else set()
        )
        for before, in_loop, name in _loss_uses(body):
            where = f"in the loop of {scope}()" if in_loop else f"in {scope}()"
            where = where if scope else "in the script's top-level loop"
            statements = _slice(before, name)
            if not statements:
                continue
            bound: set[str] = set()
            reads: set[str] = set()
            for stmt in statements:
                reads |= _loaded(stmt) - bound
                bound |= _stored([stmt])
            loop_local = _stored(before) | local | _loop_targets(body, statements[0])
            params = sorted((reads & loop_local) - set(dir(builtins)))
            defaults = _defaults(fn) if fn else {}
            ordered = [p for p in params if p not in defaults] + [p for p in params if p in defaults]
            signature = [f"{p}={ast.unparse(defaults[p])}" if p in defaults else p for p in ordered]
            first, last = statements[0].lineno, statements[-1].end_lineno or statements[-1].lineno
            ident = f"{PREFIX}{first}"
            lines = [f"def {ident}({', '.join(signature)}):"]
            lines += ["    " + line for stmt in statements for line in ast.unparse(stmt).splitlines()]
            lines.append(f"    return {name}")
            found.append(
                InlineLoss(
                    ident,
                    (first, last),
                    where,
                    tuple(ordered),
                    "\n".join(lines) + "\n",
                    scope or None,
                    tuple(statements),
                )
            )
    return found


def _loop_targets(body: list[ast.stmt], inside: ast.stmt) -> set[str]:
    """The names bound by the targets of the loops that contain ``inside``."""
    out: set[str] = set()
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, (ast.For, ast.AsyncFor)) and any(n is inside for n in ast.walk(node)):
            out |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return out
