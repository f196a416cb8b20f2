"""How a loss takes its inputs and gives its value (runs in the worker process).

Argument forms: each parameter gets a :class:`Slot`: one tensor with a role (``recon``,
``data``, ``mu``, ``scale``, ``z``), several packed in one tuple (``out = (x_hat, mu, logvar)``),
a ``torch.distributions`` object (the posterior ``Normal(mu, std)``, the prior, the
decoder's distribution), or, for a loss that reads the latents from outside its parameters (the
Keras blog's ``vae_loss(x, x_decoded_mean)`` reading the module-level ``z_mean``, a Keras
``Layer.vae_loss`` reading ``self.z_mean``), that name bound to the probe's tensor for the
call. The parameters' names and how the body uses them (``out[0]``, ``a, b, c = out``,
``q.rsample()``) give a ranked list of :class:`CallForm` candidates; the
probe keeps the first one under which the loss fits exactly.

How it gives its value is :mod:`vaeloss.check.probe.outputs`.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from vaeloss.check.result import DECODER_DISTRIBUTION
from vaeloss.check.roles import (
    DECODER_NAMES,
    FREE_ROLES,
    PRIOR_NAMES,
    Role,
    role_of,
)

__all__ = [
    "CallForm",
    "Param",
    "Slot",
    "call_forms",
    "free_tensors",
    "function_tree",
    "missing_arguments",
    "params_of",
]

SlotKind = Literal["tensor", "pack", "posterior", "prior", "decoder", "global", "attribute"]
_DIST_USES = {
    "log_prob",
    "rsample",
    "sample",
    "entropy",
    "mean",
    "loc",
    "scale",
    "stddev",
    "variance",
    "probs",
}
# orders of packed outputs seen in the wild, when the body does not name the elements
_PACK_ORDERS: dict[int, list[tuple[Role, ...]]] = {
    2: [("mu", "scale")],
    3: [("recon", "mu", "scale"), ("mu", "scale", "recon")],
    4: [("recon", "data", "mu", "scale"), ("recon", "mu", "scale", "z"), ("recon", "z", "mu", "scale")],
    5: [("recon", "data", "mu", "scale", "z"), ("recon", "mu", "scale", "z", "data")],
}


@dataclass(frozen=True)
class Param:
    """A parameter of the loss as its body uses it.

    ``kind``: "tensor"; "pack" (subscripted or unpacked; ``size`` elements, ``names`` when
    unpacked to names); "dist" (methods of a distribution are called on it); "varargs"
    (``*args``, read as ``args[i]``); "global" (not a parameter: a module-level name the body
    reads) or "attribute" (``self.NAME``), named like a latent tensor.
    """

    name: str
    kind: Literal["tensor", "pack", "dist", "varargs", "global", "attribute"]
    size: int = 0
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Slot:
    """What is passed for one parameter: ``roles`` in order (one for a tensor)."""

    param: str
    kind: SlotKind
    roles: tuple[Role, ...] = ()


@dataclass(frozen=True)
class CallForm:
    """A way to call the loss: one slot per parameter that takes the probe's tensors."""

    slots: tuple[Slot, ...]

    @property
    def takes_z(self) -> bool:
        """Whether the loss takes a posterior sample ``z`` among its arguments."""
        return any("z" in slot.roles for slot in self.slots)

    def describe(self) -> dict[str, str]:
        """Role -> where it goes (``out[1]``, ``args[2]``, ``q (a Normal)``), for the report."""
        out: dict[str, str] = {}
        for slot in self.slots:
            label = f"args[{slot.param[1:]}]" if slot.param.startswith("*") else slot.param
            if slot.kind == "tensor":
                out[slot.roles[0]] = label
            elif slot.kind == "pack" and slot.param.startswith("*"):
                for i, role in enumerate(slot.roles):
                    out[role] = f"args[{int(slot.param[1:]) + i}]"
            elif slot.kind == "pack":
                for i, role in enumerate(slot.roles):
                    out[role] = f"{label}[{i}]"
            elif slot.kind == "posterior":
                out["mu"], out["scale"] = f"{label}.loc", f"{label}.scale"
            elif slot.kind == "decoder":
                out["recon"] = f"{label}{DECODER_DISTRIBUTION}"
            elif slot.kind == "global":
                out[slot.roles[0]] = f"{label} (module-level name)"
            elif slot.kind == "attribute":
                out[slot.roles[0]] = f"self.{label}"
            else:
                out["prior"] = label
        return out


def function_tree(fn: Callable[..., Any]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The syntax tree of a function's definition (its source, dedented), or None."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _is_distribution_kl(func: ast.expr, namespace: dict[str, Any]) -> bool:
    """Whether a call's function is ``torch.distributions``' ``kl_divergence`` (written
    ``D.kl_divergence``, or a bare name bound to it), not a function of the user's of that name
    (the flax example's ``kl_divergence(mean, logvar)``)."""
    if isinstance(func, ast.Attribute):
        return func.attr == "kl_divergence"
    if not isinstance(func, ast.Name) or func.id != "kl_divergence":
        return False
    value = namespace.get(func.id)
    return value is None or str(getattr(value, "__module__", "")).startswith("torch.distributions")


def _uses(
    tree: ast.AST, name: str, namespace: dict[str, Any] | None = None
) -> tuple[int, tuple[str, ...], bool]:
    """(pack size from subscripts/unpacking, unpacked names, used as a distribution)."""
    size, dist = 0, False
    names: tuple[str, ...] = ()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == name:
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
                size = max(size, node.slice.value + 1)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id == name:
            target = node.targets[0]
            if isinstance(target, (ast.Tuple, ast.List)):
                names = tuple(t.id if isinstance(t, ast.Name) else "_" for t in target.elts)
                size = max(size, len(names))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
            if node.attr in _DIST_USES:
                dist = True
        elif isinstance(node, ast.Call) and _is_distribution_kl(node.func, namespace or {}):
            if any(isinstance(a, ast.Name) and a.id == name for a in node.args):
                dist = True
    return size, names, dist


def params_of(fn: Callable[..., Any], call: Callable[..., Any], exclude: set[str]) -> list[Param]:
    """The parameters of ``call`` that take tensors (not those given by ``--arg``), read from
    its signature and the body of ``fn`` (the function behind it)."""
    try:
        sig = inspect.signature(call.forward if isinstance(call, nn.Module) else call)
    except (TypeError, ValueError):
        return []
    tree = function_tree(fn)
    out: list[Param] = []
    for p in sig.parameters.values():
        if p.name in exclude or p.kind == p.VAR_KEYWORD:
            continue
        if p.kind == p.VAR_POSITIONAL:
            size = _uses(tree, p.name)[0] if tree is not None else 0
            out.append(Param(p.name, "varargs", max(size, 4)))
            continue
        if p.default is not inspect.Parameter.empty and not _keras_compute_loss_tensor(call, p.name):
            continue
        namespace = getattr(fn, "__globals__", {})
        size, names, dist = _uses(tree, p.name, namespace) if tree is not None else (0, (), False)
        if dist:
            out.append(Param(p.name, "dist"))
        elif size >= 2:
            out.append(Param(p.name, "pack", size, names))
        else:
            out.append(Param(p.name, "tensor"))
    if tree is not None:
        out += free_tensors(fn, tree, {p.name for p in out} | exclude)
    return out


def _keras_compute_loss_tensor(call: Callable[..., Any], name: str) -> bool:
    """``x`` and ``y_pred`` of a Keras ``Model.compute_loss(x=None, y=None, y_pred=None, ...)``:
    tensors although they default to None (``y`` stays None: the data is ``x``)."""
    return getattr(call, "__name__", "") == "compute_loss" and name in ("x", "y_pred")


def free_tensors(fn: Callable[..., Any], tree: ast.AST, exclude: set[str]) -> list[Param]:
    r"""Latent tensors the body reads from outside its parameters, by their names: module-level
    names (kind "global"; not modules or functions) and attributes of ``self`` ("attribute").

    >>> import types
    >>> f = types.FunctionType(compile("def f(x, y): pass", "f", "exec").co_consts[0], {})
    >>> tree = ast.parse("def f(x, y):\n    return x + z_mean + self.z_log_var + len(y)").body[0]
    >>> [(p.name, p.kind) for p in free_tensors(f, tree, set())]
    [('z_mean', 'global'), ('z_log_var', 'attribute')]
    """
    bound = {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)} | exclude
    bound |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    namespace = getattr(fn, "__globals__", {})
    found: dict[str, Param] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
            value = namespace.get(node.id)
            if value is None or not (callable(value) or inspect.ismodule(value)):
                found.setdefault(node.id, Param(node.id, "global"))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            found.setdefault(node.attr, Param(node.attr, "attribute"))
    return sorted(
        (p for p in found.values() if role_of(p.name) in FREE_ROLES),
        key=lambda p: (p.kind != "global", p.name),
    )


def _dist_kind(name: str) -> SlotKind:
    low = name.lower()
    if low in DECODER_NAMES or "x" in low.replace("q_", "").split("_")[0]:
        return "decoder"
    if low in PRIOR_NAMES or "prior" in low:
        return "prior"
    return "posterior"


_SWAP_RD: dict[Role, Role] = {"recon": "data", "data": "recon"}
_SWAP_MS: dict[Role, Role] = {"mu": "scale", "scale": "mu"}


def _swaps(slots: list[Slot]) -> list[tuple[Slot, ...]]:
    """The slots as named, and with recon/data and mu/scale swapped (each, and both)."""
    variants = []
    for swap_rd, swap_ms in itertools.product((False, True), repeat=2):
        table: dict[Role, Role] = {**(_SWAP_RD if swap_rd else {}), **(_SWAP_MS if swap_ms else {})}
        variants.append(tuple(Slot(s.param, s.kind, tuple(table.get(r, r) for r in s.roles)) for s in slots))
    return variants


_ALL: tuple[Role, ...] = ("recon", "data", "mu", "scale")
_VARARGS_ORDER: tuple[Role, ...] = ("recon", "data", "mu", "scale", "z")
_COVERS: dict[SlotKind, set[Role]] = {"posterior": {"mu", "scale"}, "decoder": {"recon"}}


def call_forms(params: list[Param]) -> list[CallForm]:
    """Candidate call forms, most likely first (empty: no way to pass the four tensors).

    Names read from outside the parameters (:func:`free_tensors`) take the latent roles that
    the parameters leave open, only when the parameters cannot take all four roles."""
    free = [p for p in params if p.kind in ("global", "attribute")]
    params = [p for p in params if p not in free]
    forms: list[CallForm] = []
    # first: every tensor-taking parameter by its name, positions breaking ties
    fixed: list[Slot] = []
    open_tensors: list[Param] = []
    packs: list[Param] = []
    for p in params:
        if p.kind == "dist":
            fixed.append(Slot(p.name, _dist_kind(p.name)))
        elif p.kind == "tensor":
            open_tensors.append(p)
        else:
            packs.append(p)
    covered: set[Role] = set()
    for s in fixed:
        covered |= _COVERS.get(s.kind, set())
    if not packs and len(open_tensors) + len(covered) < len(_ALL):
        for p in free:
            role = role_of(p.name)
            if role is not None and role not in covered:
                fixed.append(Slot(p.name, "global" if p.kind == "global" else "attribute", (role,)))
                covered.add(role)
    if not packs:
        needed = [r for r in _ALL if r not in covered]
        named = [role_of(p.name) for p in open_tensors]
        for order in _orders(needed, named, len(open_tensors)):
            slots = fixed + [Slot(p.name, "tensor", (r,)) for p, r in zip(open_tensors, order)]
            if set(order) | covered >= set(_ALL):
                forms += [CallForm(v) for v in _swaps(slots)]
        return _unique(forms)
    for pack in packs:
        orders: list[tuple[Role, ...]]
        if pack.kind == "varargs":
            orders = [_VARARGS_ORDER[: max(4, min(pack.size, 5))]]
        elif pack.names and any(role_of(n) for n in pack.names):
            orders = [tuple(role_of(n) or "z" for n in pack.names)]
        else:
            orders = _PACK_ORDERS.get(pack.size, [])
        for order in orders:
            rest = [r for r in _ALL if r not in order and r not in covered]
            named = [role_of(p.name) for p in open_tensors]
            for tensor_order in _orders(rest, named, len(open_tensors)):
                name = "*0" if pack.kind == "varargs" else pack.name
                slots = [*fixed, Slot(name, "pack", order)] + [
                    Slot(p.name, "tensor", (r,)) for p, r in zip(open_tensors, tensor_order)
                ]
                forms += [CallForm(v) for v in _swaps(slots)]
    return _unique(forms)


def missing_arguments(params: list[Param]) -> list[str]:
    """Required parameters that cannot be tensors of the probe: past the four roles, with a
    name that is no role (``epoch``, ``step``); they need ``--arg NAME=VALUE``."""
    params = [p for p in params if p.kind not in ("global", "attribute")]
    if any(p.kind != "tensor" for p in params):
        return []
    tensors = [p for p in params if p.kind == "tensor"]
    return [p.name for p in tensors[4:] if role_of(p.name) is None]


def _orders(needed: list[Role], named: list[Role | None], n: int) -> list[tuple[Role, ...]]:
    """Ways to give ``n`` tensor parameters the roles ``needed`` (+ ``z`` for extras): the
    names' roles first (those the names leave open, in order, to the unnamed parameters:
    ``(batch_x2, reconstructed, mu, log_var)`` gets data, recon, mu, scale), then by position.

    >>> _orders(["recon", "data", "mu", "scale"], [None, "recon", "mu", "scale"], 4)[0]
    ('data', 'recon', 'mu', 'scale')
    """
    if n < len(needed):
        return []
    extra: list[Role] = ["z"] * (n - len(needed))
    pool = [*needed, *extra]
    by_name = [r for r in named if r is not None and r in pool]
    out: list[tuple[Role, ...]] = []
    if len(by_name) == n and sorted(by_name) == sorted(pool):
        out.append(tuple(by_name))
    elif len(set(by_name)) == len(by_name) and len(named) == n and (set(pool) - {"z"}) >= set(by_name):
        left = [r for r in pool if r not in by_name or r == "z"]
        left = [*[r for r in left if r != "z"], *[r for r in left if r == "z"]][: n - len(by_name)]
        filled = iter(left)
        order = tuple(r if r is not None and r in pool else next(filled) for r in named)
        if sorted(order) == sorted(pool):
            out.append(order)
    out.append(tuple(pool))
    return out


def _unique(forms: list[CallForm]) -> list[CallForm]:
    return list(dict.fromkeys(forms))
