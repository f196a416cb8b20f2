"""Losses written inline: computed in a training loop or step and used there (``loss.backward()``,
``tape.gradient(loss, ...)``), never defined as a function. Nothing here executes the file.

:func:`find_inline_losses` finds each ``NAME.backward()`` inside a loop (at the top level of a
script, or in a function such as ``train(model, loader, optimizer, beta=4.0)``) and each
``tape.gradient(NAME, ...)`` (also in a Keras ``train_step``, under its ``with
tf.GradientTape()``) and takes the
statements before it, in the same block, that ``NAME`` depends on: a backward slice that stops
at the model's outputs (``recon, mu, logvar = model(x)``: their names become inputs) and leaves
out device moves (``x = x.to(device)``), the data loading (``x = X[i : i + batch_size]``), the
optimizer and everything else. A Keras ``model.add_loss(EXPR)`` (under the main guard, say) and
the function given to ``jax.grad``/``jax.value_and_grad`` (a ``loss_fn`` closure) are uses too;
in a file that differentiates nothing (a NumPy VAE with its own backward pass), the last
``loss = ...`` of each loop is. A slice that reads ``self`` (``self.beta``) becomes a method of
its class, called on an instance as methods are.
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
import re
from dataclasses import dataclass, field, replace

from vaeloss.check.roles import POSTERIOR_NAMES, role_of

__all__ = ["PREFIX", "InlineLoss", "find_inline_losses", "inline_words", "is_inline_name"]

PREFIX = "_vaeloss_inline_"
"""The start of the name of a function made of a loss computed inline."""


def is_inline_name(name: str) -> bool:
    """Whether ``name`` is that of a loss computed inline (``_vaeloss_inline_40``, or
    ``VAE._vaeloss_inline_55`` for one in a method).

    >>> is_inline_name("VAE._vaeloss_inline_55"), is_inline_name("loss_function")
    (True, False)
    """
    return name.rpartition(".")[2].startswith(PREFIX)


def inline_words(name: str) -> str:
    """How a message names a loss computed inline (never by its internal name); other names as
    they are.

    >>> inline_words("VAE._vaeloss_inline_55"), inline_words("loss_function")
    ('the loss computed inline at line 55', 'loss_function')
    """
    if not is_inline_name(name):
        return name
    return f"the loss computed inline at line {name.rpartition('.')[2].removeprefix(PREFIX)}"


_ADDED = "_vaeloss_added"
_PARSER_METHODS = ("add_argument", "add_argument_group", "set_defaults")
_MOVES = {"to", "cuda", "cpu", "float", "double", "detach", "contiguous"}
_MODEL_WORDS = ("model", "vae", "net", "autoencoder", "encoder", "decoder", "forward")
_LOSS_CLASS = re.compile(r"(Loss|Crossentropy|CrossEntropy|Error|Divergence|Likelihood)$")
"""The name of a framework's loss class (``nn.BCELoss``, ``keras.losses.BinaryCrossentropy``,
``MeanSquaredError``): built and applied at once, it computes a term, not the model's output."""


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
    bound_by: tuple[tuple[str, int, str], ...] = ()
    """(parameter, line, statement) of the statement before the loss that binds each parameter
    (``loss_dict`` by ``loss_dict = vae.loss_function(...)`` at line 83)."""
    values: tuple[str, ...] = ()
    """Parameters that are no tensor (no role's name) and have no default: values to give with
    ``--arg`` (``c`` of ``build_vae(c)``)."""

    def reads_a_posterior(self) -> bool:
        """Whether it can be a VAE loss: it reads a posterior's mean or scale (by their names),
        a posterior distribution, or computes something named like a KL."""
        names = {n.id for stmt in self.nodes for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        names |= {n.attr for stmt in self.nodes for n in ast.walk(stmt) if isinstance(n, ast.Attribute)}
        return any(role_of(p) in ("mu", "scale") or p.lower() in POSTERIOR_NAMES for p in self.params) or any(
            "kl" in n.lower() for n in names
        )

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
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "backward"
            and isinstance(func.value, ast.Name)
            and func.value.id != "self"  # self.backward(x_hat, mu, ...): a hand-written backward pass
        ):
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


def _added_loss(stmt: ast.stmt) -> ast.Assign | None:
    """``model.add_loss(EXPR)`` (Keras) as ``_vaeloss_added = EXPR`` at its place."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and len(stmt.value.args) == 1):
        return None
    func = stmt.value.func
    if not (isinstance(func, ast.Attribute) and func.attr == "add_loss"):
        return None
    return _added_at(stmt.value.args[0], stmt)


def _added_at(value: ast.expr, at: ast.stmt) -> ast.Assign:
    """``_vaeloss_added = VALUE`` at the place of ``at``: the loss a use hands on, as a name."""
    return ast.copy_location(ast.Assign(targets=[ast.Name(_ADDED, ast.Store())], value=value), at)


def _flat(block: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a block with those of its ``with`` blocks in their place (a loss
    computed under ``with tf.GradientTape() as tape:``)."""
    out: list[ast.stmt] = []
    for stmt in block:
        out += _flat(stmt.body) if isinstance(stmt, (ast.With, ast.AsyncWith)) else [stmt]
    return out


def _is_model_output(stmt: ast.Assign) -> bool:
    """Whether an assignment binds the model's outputs (where the slice stops): a call that
    unpacks, a model's call, a Keras layer applied (``layers.Dense(2)(h)``) or input
    (``keras.Input(shape=...)``)."""
    if not isinstance(stmt.value, ast.Call):
        return False
    if any(isinstance(t, (ast.Tuple, ast.List)) for t in stmt.targets):
        return True
    inner = stmt.value.func
    if isinstance(inner, ast.Call):  # ``layers.Dense(2)(h)``, not ``nn.BCELoss(reduction='sum')(r, x)``
        return not _LOSS_CLASS.search(ast.unparse(inner.func).rpartition(".")[2])
    if ast.unparse(inner).rpartition(".")[2] == "Input":
        return True
    func = ast.unparse(stmt.value.func).lower()
    return any(w in func for w in _MODEL_WORDS)


def _is_batch(stmt: ast.Assign) -> bool:
    """``x = X[i : i + batch_size]``: the data loading (its name is the batch)."""
    value = stmt.value
    return isinstance(value, ast.Subscript) and any(isinstance(n, ast.Slice) for n in ast.walk(value.slice))


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
    """The statements of ``block`` that ``target`` depends on, back to the model's outputs: the
    assignments, the ``if``/``try`` blocks that assign a needed name (whole: ``if args.mse:
    loss = mse(...) else: loss = bce(...)``) and the argument parser's set-up."""
    needed = {target}
    kept: list[ast.stmt] = []
    for stmt in reversed(_flat(block)):
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = _stored([stmt])
            if not targets & needed:
                continue
            if isinstance(stmt, ast.Assign) and (_is_model_output(stmt) or _is_move(stmt) or _is_batch(stmt)):
                continue  # its names are inputs of the loss
            kept.append(stmt)
            if not isinstance(stmt, ast.AugAssign):
                needed -= targets
            needed |= _loaded(stmt.value) if stmt.value is not None else set()
        elif isinstance(stmt, (ast.If, ast.Try)) and _stored([stmt]) & needed:
            kept.append(stmt)  # what it assigns may also come from before: still needed
            needed |= _loaded(stmt)
        elif is_parser_setup(stmt, needed):
            kept.append(stmt)
            needed |= _loaded(stmt)
    return list(reversed(kept))


def is_parser_setup(stmt: ast.stmt, needed: set[str]) -> bool:
    """``parser.add_argument(...)`` of a needed parser (``args = parser.parse_args()`` is)."""
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in _PARSER_METHODS
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id in needed
    )


@dataclass(frozen=True)
class _Use:
    """Where a loss is used: the statements before it in its block, and its context."""

    before: list[ast.stmt]
    name: str
    in_loop: bool
    guarded: bool  # under ``if __name__ == "__main__":``
    label: str = ""  # for people, when it says more than the loop or the function


def _is_main_guard(stmt: ast.stmt) -> bool:
    test = ast.unparse(stmt.test) if isinstance(stmt, ast.If) else ""
    return "__name__" in test and "__main__" in test


def _loss_uses(body: list[ast.stmt], in_loop: bool = False, guarded: bool = False) -> list[_Use]:
    """Each ``NAME.backward()`` in a loop, each ``tape.gradient(NAME, ...)`` (in a loop or not: a
    Keras ``train_step``) and each ``model.add_loss(EXPR)`` (anywhere: under the main guard, in a
    model-building function)."""
    found = []
    for i, stmt in enumerate(body):
        name = _backward_name(stmt) if in_loop else None
        name = name or _gradient_name(stmt)
        added = _added_loss(stmt)
        if name is not None:
            found.append(_Use(body[:i], name, in_loop, guarded))
        elif added is not None:
            found.append(_Use([*body[:i], added], _ADDED, in_loop, guarded))
        loop = in_loop or isinstance(stmt, (ast.For, ast.While, ast.AsyncFor))
        for part in ("body", "orelse", "finalbody"):
            inner = getattr(stmt, part, None)
            if isinstance(inner, list) and not isinstance(
                stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            ):
                found += _loss_uses(inner, loop, guarded or (part == "body" and _is_main_guard(stmt)))
        for handler in getattr(stmt, "handlers", []):
            found += _loss_uses(handler.body, in_loop, guarded)
    return found


_GRADS = ("grad", "value_and_grad")


def _differentiated(tree: ast.Module) -> dict[str, str]:
    """The functions the file differentiates, by name: ``jax.grad(loss_fn)``,
    ``jax.value_and_grad(loss_fn, has_aux=True)`` -> ``{"loss_fn": "jax.value_and_grad"}``
    (MLX's ``nn.value_and_grad(model, loss_fn)`` too)."""
    defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if isinstance(node, ast.Call) and name in _GRADS:
            # jax.grad(loss_fn); MLX's nn.value_and_grad(model, loss_fn) takes the model first
            given = [a.id for a in node.args[:2] if isinstance(a, ast.Name) and a.id in defined]
            if given:
                out.setdefault(given[0], ast.unparse(node.func))
    return out


def _returned(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.Assign | None:
    """The last ``return`` of a function's body as ``_vaeloss_added = VALUE`` (its first element
    when it returns ``loss, aux``: ``has_aux=True``)."""
    last = fn.body[-1] if fn.body else None
    if not isinstance(last, ast.Return) or last.value is None:
        return None
    value = last.value
    if isinstance(value, ast.Tuple) and value.elts:
        value = value.elts[0]
    return _added_at(value, last)


def _closure_uses(
    tree: ast.Module,
) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, ast.FunctionDef | ast.AsyncFunctionDef | None, _Use]]:
    """(the differentiated function, the function it is defined in, its use) for each function
    given to ``jax.grad``/``jax.value_and_grad`` (a closure of ``train_step`` or a top-level
    ``loss_fn``)."""
    grads = _differentiated(tree)
    out = []
    parents: list[tuple[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef | None]] = [(tree, None)]
    while parents:
        node, outer = parents.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                added = _returned(child) if child.name in grads else None
                if added is not None:
                    inside = f" of {outer.name}()" if outer else ""
                    label = f"in {child.name}(){inside}, differentiated by {grads[child.name]}"
                    out.append((child, outer, _Use([*child.body[:-1], added], _ADDED, False, False, label)))
                parents.append((child, child))
            else:
                parents.append((child, outer))
    return out


def _logged_losses(body: list[ast.stmt], in_loop: bool = False) -> list[_Use]:
    """The last ``NAME = ...`` named like a loss (``loss``, ``elbo``) of each loop's block, for a
    file that differentiates nothing (a NumPy VAE with its own backward pass)."""
    found = []
    named = [
        i
        for i, stmt in enumerate(body)
        if isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and any(w in stmt.targets[0].id.lower() for w in ("loss", "elbo"))
    ]
    if in_loop and named:
        target = body[named[-1]].targets[0]  # type: ignore[attr-defined]
        found.append(_Use(body[: named[-1] + 1], target.id, True, False))
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        loop = in_loop or isinstance(stmt, (ast.For, ast.While, ast.AsyncFor))
        for part in ("body", "orelse"):
            inner = getattr(stmt, part, None)
            if isinstance(inner, list):
                found += _logged_losses(inner, loop)
    return found


def _returned_terms(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> _Use | None:
    """For a function that runs the model itself (a layer applied, an ``Input``, the model's
    outputs unpacked): what a loss-named one returns (``loss_fn(params, batch, rng)``), and
    what a model-building one returns named like a loss (``return vae, reconstruction_loss,
    kl_loss``: the terms, as a tuple)."""
    last = fn.body[-1] if fn.body else None
    builds = any(isinstance(s, ast.Assign) and _is_model_output(s) for s in _flat(fn.body))
    if not isinstance(last, ast.Return) or last.value is None or not builds:
        return None
    if any(w in fn.name.lower() for w in ("loss", "elbo", "objective")):
        # loss_fn(params, batch, rng) calling the model: its value (loss of ``loss, aux``)
        added = _returned(fn)
        label = f"returned by {fn.name}(), from the model's outputs"
        return _Use([*fn.body[:-1], added], _ADDED, False, False, label) if added else None
    values = last.value.elts if isinstance(last.value, ast.Tuple) else [last.value]
    terms = [v for v in values if isinstance(v, ast.Name) and "loss" in v.id.lower()]
    if not terms:
        return None
    value: ast.expr = terms[0] if len(terms) == 1 else ast.Tuple(elts=list[ast.expr](terms), ctx=ast.Load())
    added = _added_at(value, last)
    names = ", ".join(t.id for t in terms)
    return _Use([*fn.body[:-1], added], _ADDED, False, False, f"returned ({names}) by {fn.name}()")


def _compiled_loss(tree: ast.Module) -> ast.expr | None:
    """The loss given to a Keras model's ``compile(optimizer, loss=...)`` in the file (its first)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "compile"
        ):
            given = [k.value for k in node.keywords if k.arg == "loss"] or node.args[1:2]
            if given and not (isinstance(given[0], ast.Constant) and given[0].value is None):
                return given[0]
    return None


def _is_keras_call(tree: ast.Module, scope: str) -> bool:
    """Whether ``scope`` is the ``call`` method of a class of the file (a Keras model's or layer's)."""
    head, _, method = scope.partition(".")
    return method == "call" and any(isinstance(n, ast.ClassDef) and n.name == head for n in tree.body)


def _plus_compiled(
    statements: list[ast.stmt], fn: ast.FunctionDef | ast.AsyncFunctionDef, compiled: ast.expr, where: str
) -> tuple[list[ast.stmt], str]:
    """A Keras model's ``call`` that adds a term with ``self.add_loss`` trains on it plus the loss
    given to ``compile``, of (the data, what ``call`` returns): that sum, as ``fit`` computes it.
    A layer's ``call`` (a ``KLDivergenceLayer``) adds it to the model's loss of ``(y_true,
    y_pred)``: the data and the reconstruction, as ``fit`` passes them."""
    last = fn.body[-1] if fn.body else None
    inputs = [a.arg for a in fn.args.args[1:2]]
    returned = last.value.id if isinstance(last, ast.Return) and isinstance(last.value, ast.Name) else None
    if inputs and returned and returned != inputs[0]:  # a model's call: its inputs, its output
        data, recon = inputs[0], returned
    else:  # a layer's (a KLDivergenceLayer returns its inputs): the model's, as fit gives them
        data, recon = "y_true", "y_pred"
    code = f"{_ADDED} = __import__('keras').losses.get(COMPILED)({data}, {recon}) + {_ADDED}"
    plus = ast.parse(code).body[0]
    for node in ast.walk(plus):  # the compile's own expression, with its own line (for findings)
        if isinstance(node, ast.Call) and node.args and getattr(node.args[0], "id", None) == "COMPILED":
            node.args[0] = compiled
    for node in ast.walk(plus):
        if node is not compiled and not _within(node, compiled):
            ast.copy_location(node, statements[-1])
    text = ast.unparse(compiled)
    said = f"{where}, given to add_loss, plus the loss given to compile at line {compiled.lineno} (`{text}`)"
    return [*statements, plus], said


def _within(node: ast.AST, root: ast.AST) -> bool:
    return any(node is n for n in ast.walk(root))


def _where(scope: str, use: _Use) -> str:
    """For people: ``in the loop of train()``, ``under the script's main guard``."""
    if use.label:
        return use.label
    if scope:
        return f"in the loop of {scope}()" if use.in_loop else f"in {scope}()"
    if use.in_loop:
        return "in the script's top-level loop"
    return "under the script's main guard" if use.guarded else "at the script's top level"


def _module_tensors(tree: ast.Module) -> set[str]:
    """Names the module binds at its top level (in ``if``/``try`` blocks too, not in functions)
    that are named like a loss's tensors (``inputs``, ``z_mean``: a Keras functional model's)."""
    names: set[str] = set()
    todo = list(tree.body)
    while todo:
        stmt = todo.pop()
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            names |= _stored([stmt])
        elif isinstance(stmt, (ast.If, ast.Try)):
            todo += stmt.body + stmt.orelse + getattr(stmt, "finalbody", [])
    return {n for n in names if role_of(n) is not None}


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
    """Every loss computed inline and used by ``.backward()`` in a loop, by ``tape.gradient``
    or by ``add_loss`` (see the module docstring)."""
    found: list[InlineLoss] = []
    tensors = _module_tensors(tree)
    scopes = _scopes(tree)
    compiled = _compiled_loss(tree)
    closures = _closure_uses(tree)
    differentiates = any(_loss_uses(body) for body, _, _ in scopes) or bool(closures)
    outers = {id(outer) for _, outer, _ in closures}
    for body, fn, scope in scopes:
        local = (_stored(body) | _arguments(fn)) if fn else set()
        uses = _loss_uses(body) if differentiates else _logged_losses(body)
        plain = fn is not None and not uses and "." not in scope and id(fn) not in outers
        returned = _returned_terms(fn) if plain and fn is not None else None
        for use in uses or ([returned] if returned else []):
            statements = _slice(use.before, use.name)
            if statements:
                local_names = _stored(use.before) | local | _loop_targets(body, statements[0]) | tensors
                where = _where(scope, use)
                if _is_keras_call(tree, scope) and use.name == _ADDED and compiled is not None and fn:
                    statements, where = _plus_compiled(statements, fn, compiled, where)
                    local_names |= {"y_true", "y_pred"}  # a layer's: the model's, as fit gives them
                found.append(_function(statements, use, where, local_names, fn, scope))
    for fn, outer, use in closures:
        statements = _slice(use.before, use.name)
        if statements:
            local_names = _stored(use.before) | _arguments(fn) | tensors
            if outer is not None:
                local_names |= _stored(outer.body) | _arguments(outer)
            scope = (outer or fn).name
            found.append(_function(statements, use, _where(scope, use), local_names, outer or fn, scope))
    return _unique_names(found)


def _arguments(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    return {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}


def _unique_names(found: list[InlineLoss]) -> list[InlineLoss]:
    """The same losses, two starting on one line told apart by their last line."""
    firsts = [f.lines[0] for f in found]
    out = []
    for f in found:
        if firsts.count(f.lines[0]) > 1:
            short = f.name.rpartition(".")[2]
            f = replace(
                f,
                name=f"{f.name}_{f.lines[1]}",
                source=f.source.replace(f"def {short}(", f"def {short}_{f.lines[1]}(", 1),
            )
        out.append(f)
    return out


def _function(
    statements: list[ast.stmt],
    use: _Use,
    where: str,
    local: set[str],
    fn: ast.FunctionDef | ast.AsyncFunctionDef | None,
    scope: str,
) -> InlineLoss:
    """The loss as a function of the names its statements read that ``local`` holds (those the
    loop, the function or the model binds), the function's own defaults kept."""
    bound: set[str] = set()
    reads: set[str] = set()
    for stmt in statements:
        reads |= _loaded(stmt) - bound
        bound |= _stored([stmt])
    # a builtin's name bound here (``for input, _ in loader``) is the user's tensor, not the builtin
    params = sorted(reads & local)
    defaults = _defaults(fn) if fn else {}
    # tensors first (named like a role), then values to give with --arg (``c`` of build_vae(c)),
    # then the function's defaults
    tensors = [p for p in params if p not in defaults and role_of(p) is not None]
    values = [p for p in params if p not in defaults and role_of(p) is None]
    arguments = _arguments(fn) if fn is not None else set()
    given = [v for v in values if v in arguments]  # the function's own (c of build_vae(c)), not the loop's
    ordered = tensors + values + [p for p in params if p in defaults]
    cls = scope.partition(".")[0] if "." in scope else ""
    if cls and "self" in ordered:  # reads self.beta: a method of the class, on an instance
        ordered.remove("self")
        ordered.insert(0, "self")
    else:
        cls = ""
    signature = [f"{p}={ast.unparse(defaults[p])}" if p in defaults else p for p in ordered]
    # the span people are shown starts where the loss reads its tensors (not at the parser's set-up)
    first = next((s.lineno for s in statements if _loaded(s) & set(params)), statements[0].lineno)
    last = statements[-1].end_lineno or statements[-1].lineno
    short = f"{PREFIX}{first}"
    ident = f"{cls}.{short}" if cls else short
    lines = [f"def {short}({', '.join(signature)}):"]
    lines += ["    " + line for stmt in statements for line in ast.unparse(stmt).splitlines()]
    lines.append(f"    return {use.name}")
    source = "\n".join(lines) + "\n"
    bound_by = tuple(
        (p, stmt.lineno, ast.unparse(stmt))
        for p in ordered
        for stmt in [s for s in use.before if isinstance(s, ast.Assign) and p in _stored([s])][-1:]
    )
    return InlineLoss(
        ident, (first, last), where, tuple(ordered), source, scope or None, tuple(statements), bound_by,
        tuple(v for v in given if not (cls and v == "self")),
    )  # fmt: skip


def _loop_targets(body: list[ast.stmt], inside: ast.stmt) -> set[str]:
    """The names bound by the targets of the loops that contain ``inside``."""
    out: set[str] = set()
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, (ast.For, ast.AsyncFor)) and any(n is inside for n in ast.walk(node)):
            out |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return out
