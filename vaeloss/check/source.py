"""Static reading of a user's file: the loss candidates it defines, and the lines of the
constructs that findings point at, inside the loss and what it calls. Nothing here executes
the file.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field
from typing import Literal

from vaeloss.check.inline import InlineLoss, find_inline_losses, is_parser_setup
from vaeloss.errors import LossCheckError, NoLossError
from vaeloss.usercode.sourcefile import SourceFile

__all__ = ["RECON_CALLS", "Candidate", "StaticSource", "read_static", "returns_inner_function"]

CandidateKind = Literal["function", "method", "class", "instance", "factory", "nested"]
_LOSS_WORDS = ("loss", "elbo", "criterion", "objective")
_STEP_METHODS = ("training_step",)
"""Methods that compute the loss by the framework's contract (Lightning's)."""
_KERAS_STEP_METHODS = ("test_step",)
"""The same in a ``keras.Model`` subclass (its ``train_step`` also applies the optimizer and
updates its metrics: read inline, not called)."""
RECON_CALLS = (  # calls that compute a reconstruction term
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
    "BCELoss",
    "MSELoss",
    "BCEWithLogitsLoss",
    "L1Loss",
    "log_prob",
    "binary_crossentropy",
    "gaussian_nll_loss",
    "smooth_l1_loss",
    "log_softmax",
    "sigmoid_binary_cross_entropy",
    "mean_squared_error",
    "MeanSquaredError",
    "BinaryCrossentropy",
    "MeanAbsoluteError",
    "squared_error",
    "cross_entropy",
)


@dataclass(frozen=True)
class Candidate:
    """Something in the file that may be the loss: its name as ``check`` takes it, its line,
    what it is, and how many tensor arguments it takes (methods: without ``self``)."""

    name: str
    line: int
    kind: CandidateKind
    n_args: int
    stores_loss: bool = False  # a model whose forward stores its loss (``self.loss = ...``)
    step: bool = False  # a method where a framework computes the loss of a batch (training_step)

    @property
    def loss_named(self) -> bool:
        """Named like a loss, or where frameworks compute one (Lightning's ``training_step``)."""
        return self.step or self.stores_loss or any(w in self.name.lower() for w in _LOSS_WORDS)


def _required(node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    args = node.args
    pos = [a.arg for a in args.posonlyargs + args.args]
    n = len(pos) - len(args.defaults)
    if method and pos and pos[0] in ("self", "cls"):
        n -= 1
    n += sum(d is None for d in args.kw_defaults)
    return max(n, 4) if args.vararg is not None else n


def returns_inner_function(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether ``node`` returns a function it defines, or a lambda."""
    inner = {
        n.name
        for n in ast.walk(node)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n is not node
    }
    for ret in (n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None):
        if isinstance(ret.value, ast.Lambda) or (isinstance(ret.value, ast.Name) and ret.value.id in inner):
            return True
    return False


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


_ARGS_NAMES = ("args", "opt", "opts", "options", "config", "cfg", "hparams", "flags", "FLAGS")
"""What a script calls the namespace its argparse parser gives (``main(args)``)."""


def _closure_arguments(tree: ast.Module, outer: ast.FunctionDef, inner: ast.FunctionDef) -> list[str]:
    """Statements that give a nested function the argparse values it reads from its outer
    function's parameter (``loss_fn`` reading ``args.kl_weight`` of ``main(args)``): the file's
    parser set-up (at the top level or under the main guard) and ``args =
    parser.parse_args([])``, its defaults; none when it reads no such parameter.

    >>> tree = ast.parse("def main(args):\\n    def f(x):\\n        return x * args.w\\n"
    ...                  "p = argparse.ArgumentParser()\\np.add_argument('--w', default=0.5)\\n")
    >>> _closure_arguments(tree, tree.body[0], tree.body[0].body[0])
    ['p = argparse.ArgumentParser()', "p.add_argument('--w', default=0.5)", 'args = p.parse_args([])']
    """
    params = {a.arg for a in ast.walk(outer.args) if isinstance(a, ast.arg)} & set(_ARGS_NAMES)
    reads = {n.id for n in ast.walk(inner) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    wanted = sorted(params & reads)
    if not wanted:
        return []
    top = list(tree.body) + [s for n in tree.body if isinstance(n, ast.If) for s in n.body]
    parsers = {
        s.targets[0].id: s
        for s in top
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
        and isinstance(s.value, ast.Call) and ast.unparse(s.value.func).endswith("ArgumentParser")
    }  # fmt: skip
    if len(parsers) != 1:
        return []
    name, made = next(iter(parsers.items()))
    added = [s for s in top if is_parser_setup(s, {name})]
    return [
        ast.unparse(made),
        *map(ast.unparse, added),
        *(f"{w} = {name}.parse_args([])" for w in wanted),
    ]


def nested_functions(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, ast.FunctionDef]:
    r"""The functions defined in ``fn``'s own body (in its blocks too, not inside other inner
    functions): ``loss_fn`` of ``def main(args): def loss_fn(recon_x, x, mu, logvar): ...``.

    >>> code = "def main(args):\n    def loss_fn(r, x, m, v):\n        return r\n    loss_fn(1, 2, 3, 4)"
    >>> tree = ast.parse(code)
    >>> list(nested_functions(tree.body[0]))
    ['loss_fn']
    """
    found: dict[str, ast.FunctionDef] = {}
    todo: list[ast.stmt] = list(fn.body)
    while todo:
        stmt = todo.pop(0)
        if isinstance(stmt, ast.FunctionDef):
            found.setdefault(stmt.name, stmt)
            continue
        if isinstance(stmt, (ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        for part in ("body", "orelse", "finalbody"):
            todo += getattr(stmt, part, None) or []
        for handler in getattr(stmt, "handlers", None) or []:
            todo += handler.body
    return found


@dataclass
class StaticSource:
    """What the file says, statically."""

    source: SourceFile
    tree: ast.Module
    candidates: list[Candidate]
    inline: dict[str, InlineLoss] = field(default_factory=dict)
    """The losses computed inline (:mod:`vaeloss.check.inline`), by the name of their function."""

    def node_of(self, name: str) -> list[ast.AST]:
        """The definitions behind ``name`` (a function, a class, a method, or the class of a
        module-level instance), for finding lines inside the loss."""
        if name in self.inline:
            return list(self.inline[name].nodes)
        head, _, method = name.partition(".")
        defs = {
            n.name: n
            for n in self.tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        }
        node = defs.get(head)
        if node is None:  # a module-level instance: the class it is made from
            for stmt in self.tree.body:
                if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == head for t in stmt.targets
                ):
                    if isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name):
                        node = defs.get(stmt.value.func.id)
        if node is None:
            return []
        if method and isinstance(node, ast.ClassDef):
            found = _methods(node).get(method)
            return [found] if found is not None else []
        if method and isinstance(node, ast.FunctionDef):  # a function defined inside another
            inner = nested_functions(node).get(method)
            return [inner] if inner is not None else []
        return [node]

    def nested_names(self) -> list[str]:
        """Every function defined inside a top-level function, as ``outer.inner``."""
        return [
            f"{outer.name}.{inner}"
            for outer in self.tree.body
            if isinstance(outer, ast.FunctionDef)
            for inner in nested_functions(outer)
        ]

    def nested_source(self, name: str) -> str:
        """The source of ``name`` when it is a function defined inside a top-level function
        (``main.loss_fn``), dedented and at its own lines (blank lines before it), else ''."""
        head, _, inner = name.partition(".")
        outer = next((n for n in self.tree.body if isinstance(n, ast.FunctionDef) and n.name == head), None)
        node = nested_functions(outer).get(inner) if outer is not None and inner else None
        if outer is None or node is None:
            return ""
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        lines = self.source.text.splitlines()[first - 1 : node.end_lineno]
        prelude = _closure_arguments(self.tree, outer, node)
        padding = [""] * max(first - 1 - len(prelude), 0)
        return "\n".join(prelude + padding) + "\n" + textwrap.dedent("\n".join(lines)) + "\n"

    def region(self, name: str) -> list[ast.AST]:
        """The loss's definitions and the functions of this file they call (two levels deep),
        and for a method, the other methods of its class that it calls on ``self``."""
        defs = {n.name: n for n in self.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        head = name.partition(".")[0]
        classes = {n.name: n for n in self.tree.body if isinstance(n, ast.ClassDef)}
        methods = _methods(classes[head]) if head in classes else {}
        nodes = self.node_of(name)
        seen = {id(n) for n in nodes}
        frontier = list(nodes)
        for _ in range(2):
            nxt: list[ast.AST] = []
            for node in frontier:
                for call in (c for c in ast.walk(node) if isinstance(c, ast.Call)):
                    target: ast.AST | None = None
                    if isinstance(call.func, ast.Name):
                        target = defs.get(call.func.id)
                    elif isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
                        if call.func.value.id == "self":
                            target = methods.get(call.func.attr)
                    if target is not None and id(target) not in seen:
                        seen.add(id(target))
                        nxt.append(target)
            nodes += nxt
            frontier = nxt
        return nodes

    def lines_for(self, name: str) -> dict[str, list[int]]:
        """Lines of the constructs findings point at, inside the loss's region only."""
        found: dict[str, list[int]] = {}

        def add(key: str, line: int) -> None:
            found.setdefault(key, [])
            if line not in found[key]:
                found[key].append(line)

        for root in self.region(name):
            for node in ast.walk(root):
                line = getattr(node, "lineno", 0)
                if isinstance(node, ast.Call):
                    fn = node.func
                    called = (
                        fn.attr
                        if isinstance(fn, ast.Attribute)
                        else (fn.id if isinstance(fn, ast.Name) else "")
                    )
                    for kw in node.keywords:
                        if kw.arg in ("size_average", "reduce"):
                            value = ast.unparse(kw.value)
                            add(f"deprecated:{kw.arg}={value}", line)
                            add("deprecated_reduction", line)
                    if called in RECON_CALLS:
                        add("recon", line)
                    if called in ("item", "detach", "numpy", "tolist"):
                        add("gradient_cut", line)
                    text = ast.unparse(node)
                    if called in ("kl_divergence", "exp") or (
                        called == "sum" and "logvar" in text.replace("_", "")
                    ):
                        add("kl", line)
                    if called in ("clamp", "clamp_min", "max", "maximum") and "kl" in text.lower():
                        add("free_bits", line)
                elif isinstance(node, ast.Attribute) and node.attr == "data":
                    add("gradient_cut", line)
                elif isinstance(node, ast.Constant) and node.value == 784:
                    add("hard_coded_784", line)
                elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
                    if (
                        isinstance(node.right, ast.Constant)
                        and node.right.value == 2
                        and "-" in ast.unparse(node.left)
                    ):
                        add("recon", line)
                if isinstance(node, ast.Return):
                    add("return", line)
        for lines in found.values():
            lines.sort()
        return found

    def imports(self, module: str) -> bool:
        """Whether the file imports ``module`` (or a submodule of it) anywhere."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == module for a in node.names):
                return True
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == module:
                return True
        return False


def _inline_at(static: StaticSource, line: int) -> InlineLoss:
    """The loss computed inline whose lines hold ``line`` (``FILE:53``)."""
    inline = sorted(static.inline.values(), key=lambda i: i.lines)
    for found in inline:
        if found.lines[0] <= line <= found.lines[1]:
            return found
    if not inline:
        said = f"{static.source.path} computes no loss inline. Try 'vaeloss check {static.source.path}:NAME'"
    elif len(inline) == 1:
        said = (
            f"the one loss {static.source.path} computes inline starts at line {inline[0].lines[0]}. Try it"
        )
    else:
        starts = ", ".join(str(i.lines[0]) for i in inline)
        said = f"the losses {static.source.path} computes inline start at lines {starts}. Try one of them"
    raise LossCheckError(f"Expected a line where a loss is computed inline but got {str(line)!r}: {said}.")


def _no_vae_loss(static: StaticSource, inline: list[InlineLoss]) -> NoLossError:
    """The error for a file whose only losses are computed inline and read no posterior."""
    reads = sorted({p for i in inline for p in i.params})
    what = ", ".join(reads) + ", and" if reads else ""
    if len(inline) == 1:
        said = f"{inline[0].describe()}, is none: it reads {what}"
    else:
        places = "; ".join(i.describe().removeprefix("the loss computed inline ") for i in inline)
        said = f"the {len(inline)} losses computed inline ({places}) are none: they read {what}"
    return NoLossError(
        f"Expected a VAE loss but {said} no posterior mean and (log-)variance (a classifier's or a "
        f"GAN's loss?). Try 'vaeloss check {static.source.path}:NAME' with the function that "
        "computes your VAE loss."
    )


_BUILT_IN_LOSSES = (
    "nn.",
    "torch.nn.",
    "keras.losses.",
    "tf.keras.losses.",
    "losses.",
    "optax.",
    "keras.metrics.",
    "tf.keras.metrics.",
    "metrics.",
    "torchmetrics.",
    "tf.metrics.",
)
"""Where a framework's own losses and metrics come from: ``criterion = nn.BCELoss()`` and
``loss_tracker = keras.metrics.Mean(name="loss")`` are no VAE loss."""


def stored_loss_attribute(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    r"""The attribute a model's method stores its loss in (``self.loss = rec + kl``: "loss"; the
    last such assignment), or None.

    >>> code = "def forward(self, x):\n    self.total_loss = x.sum()\n    return x"
    >>> stored_loss_attribute(ast.parse(code).body[0])
    'total_loss'
    """
    found = None
    for node in ast.walk(fn):
        for t in node.targets if isinstance(node, ast.Assign) else ():
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                found = t.attr if "loss" in t.attr.lower() else found
    return found


def _keras_model(node: ast.ClassDef) -> bool:
    """Whether the class subclasses a Keras model (``keras.Model``, ``tf.keras.Model``, ``Model``)."""
    return any(ast.unparse(b).rpartition(".")[2] == "Model" for b in node.bases)


def _candidates(tree: ast.Module) -> list[Candidate]:
    out: list[Candidate] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = _required(node, method=False)
            kind: CandidateKind = "factory" if returns_inner_function(node) else "function"
            out.append(Candidate(node.name, node.lineno, kind, n))
            if kind == "function" and isinstance(node, ast.FunctionDef):  # ``main(args)``'s ``loss_fn``
                for inner in nested_functions(node).values():
                    n_inner = _required(inner, method=False)
                    out.append(Candidate(f"{node.name}.{inner.name}", inner.lineno, "nested", n_inner))
        elif isinstance(node, ast.ClassDef):
            methods = _methods(node)
            callable_ = methods.get("forward") or methods.get("__call__")
            if callable_ is not None and any(w in node.name.lower() for w in _LOSS_WORDS):
                out.append(Candidate(node.name, node.lineno, "class", _required(callable_, method=True)))
            elif callable_ is not None and stored_loss_attribute(callable_):
                out.append(Candidate(node.name, node.lineno, "class", 1, stores_loss=True))
            for mname, m in methods.items():
                if mname.startswith("__"):
                    continue
                n = _required(m, method=True)
                n = max(n, 2) if mname == "compute_loss" else n  # Keras's (x=None, y=None, y_pred=None)
                step = mname in _STEP_METHODS or (mname in _KERAS_STEP_METHODS and _keras_model(node))
                out.append(Candidate(f"{node.name}.{mname}", m.lineno, "method", n, step=step))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if ast.unparse(node.value.func).startswith(_BUILT_IN_LOSSES):
                continue
            for t in node.targets:
                if isinstance(t, ast.Name) and any(w in t.id.lower() for w in _LOSS_WORDS):
                    out.append(Candidate(t.id, node.lineno, "instance", 4))
    return out


def _rank(c: Candidate) -> tuple[int, int]:
    if c.loss_named and c.n_args >= 4:
        return 0, c.line
    if c.loss_named and (c.n_args >= 2 or c.step or c.kind in ("class", "instance", "factory")):
        return 1, c.line
    if c.n_args >= 4 and c.kind in ("function", "nested"):
        return 2, c.line
    return 9, c.line


def read_static(source: SourceFile) -> StaticSource:
    """Parse the file; raise :class:`LossCheckError` on a syntax error."""
    try:
        tree = ast.parse(source.text, filename=str(source.path))
    except SyntaxError as exc:
        where = source.where(exc.lineno) or "an unknown line"
        raise LossCheckError(
            f"Expected valid Python but {source.path} has a syntax error at {where}: "
            f"{exc.msg.rstrip('.?!')}. Try 'python -m py_compile {source.path}' to see it."
        ) from None
    ranked = sorted((c for c in _candidates(tree) if _rank(c)[0] < 9), key=_rank)
    return StaticSource(source, tree, ranked, {i.name: i for i in find_inline_losses(tree)})


def select(static: StaticSource, name: str | None, *, limit: int = 6) -> tuple[list[str], str, bool]:
    """The names to try (the loss, or candidates best first), why, and whether it was named.

    Losses computed inline (:mod:`vaeloss.check.inline`) come after the functions and classes
    while fewer than ``limit`` of those are candidates; a named function whose body computes
    one (``FILE:train``) is that loss, and so is a line of it (``FILE:53``)."""
    inline = list(static.inline.values())
    if name is not None and name.isdigit():  # FILE:LINE, a loss computed inline there
        found = _inline_at(static, int(name))
        return [found.name], f"{found.describe()}, at line {name} as named", True
    if name is not None:
        inside = [i for i in inline if i.scope == name]
        if inside:
            return [inside[0].name], f"{inside[0].describe()}, in {name!r} as named", True
        return [name], f"{name!r} as named", True
    vae_like = [i for i in inline if i.reads_a_posterior()]
    # a function whose body holds a loss computed inline is that loss (``loss_fn(model, X)``)
    holders = {i.scope for i in vae_like}
    candidates = [c for c in static.candidates if c.name not in holders][:limit]
    if not candidates and inline and not vae_like:
        raise _no_vae_loss(static, inline)
    inline = vae_like
    if not candidates and len(inline) == 1:
        return [inline[0].name], f"the only loss found: {inline[0].describe()}", False
    if not candidates and inline:
        return [i.name for i in inline], "", False
    if inline:
        return (
            [c.name for c in candidates] + ([i.name for i in inline] if len(candidates) < limit else []),
            "",
            False,
        )
    if not candidates:
        listed = ", ".join(n.name for n in static.tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
        raise NoLossError(
            f"Expected a loss taking (reconstruction, data, mu, logvar) in {static.source.path} but "
            f"found none among its top-level functions and classes ({listed or 'none'}). "
            f"Try 'vaeloss check {static.source.path}:NAME' (a function, Class, Class.method or object)."
        )
    if len(candidates) == 1:
        return [candidates[0].name], f"the only loss-like candidate, {candidates[0].name!r}", False
    return [c.name for c in candidates], "", False
