"""Which files of a project may hold a VAE loss, read from their syntax alone (nothing is
imported or run): a function, a method, or the module's top-level code that computes both a
KL-like term and a reconstruction term.

* KL-like: a name or attribute spelled like a KL (``kld``, ``kl_loss``, ``self.kl``,
  ``kl_divergence``), or an ``exp`` of something next to a name of a posterior's scale
  (``logvar``, ``log_var``, ``z_log_sigma``, ``std``...), as the closed-form Gaussian KL has;
* reconstruction: a call of a reconstruction loss or log-density (the names ``check`` knows:
  ``binary_cross_entropy``, ``mse_loss``, ``log_prob``, ``optax.sigmoid_binary_cross_entropy``...),
  a squared difference (``(a - b) ** 2``, ``.pow(2)``, ``square(a - b)``), or a name of one
  (``recon_loss``, ``bce``, ``nll``, ``reconstruction``).

A classifier (cross-entropy, no KL), a GAN, a data module: no unit has both, not a candidate.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from vaeloss.check.source import RECON_CALLS

__all__ = ["Unit", "vae_units"]

_KL_NAME = re.compile(r"(^|_)(kl|kld|kls)(_|$|\d)|^kl[a-z]*$|kullback|kl_div", re.IGNORECASE)
_SCALE_NAME = re.compile(
    r"log_?var|log_?sigma|log_?std|logvar|^std$|_std$|^sigma|_sigma$|scale", re.IGNORECASE
)
_RECON_NAME = re.compile(
    r"recon|reconstruction|(^|_)(bce|mse|nll|rec)(_|$)|likelihood|log_?px", re.IGNORECASE
)


@dataclass(frozen=True)
class Unit:
    """A place of the file that computes both terms: its name (``loss_function``,
    ``VAE.training_step``, ``<module>`` for top-level code) and first line."""

    name: str
    line: int


def _identifiers(nodes: list[ast.AST]) -> set[str]:
    out: set[str] = set()
    for root in nodes:
        for n in ast.walk(root):
            if isinstance(n, ast.Name):
                out.add(n.id)
            elif isinstance(n, ast.Attribute):
                out.add(n.attr)
            elif isinstance(n, ast.arg):
                out.add(n.arg)
    return out


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_squared_difference(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Sub)
    if isinstance(node, ast.Call) and _called(node) in ("pow", "square", "abs"):
        target = node.func.value if isinstance(node.func, ast.Attribute) else None
        args = [*node.args, *([target] if target is not None else [])]
        return any(isinstance(a, ast.BinOp) and isinstance(a.op, ast.Sub) for a in args)
    return False


def _has_kl(nodes: list[ast.AST], names: set[str]) -> bool:
    if any(_KL_NAME.search(n) for n in names):
        return True
    calls = {_called(c) for root in nodes for c in ast.walk(root) if isinstance(c, ast.Call)}
    return "exp" in calls and any(_SCALE_NAME.search(n) for n in names)


def _has_recon(nodes: list[ast.AST], names: set[str]) -> bool:
    if any(_RECON_NAME.search(n) for n in names):
        return True
    for root in nodes:
        for n in ast.walk(root):
            if isinstance(n, ast.Call) and _called(n) in RECON_CALLS:
                return True
            if _is_squared_difference(n):
                return True
    return False


def _computes_both(nodes: list[ast.AST]) -> bool:
    names = _identifiers(nodes)
    return _has_kl(nodes, names) and _has_recon(nodes, names)


_Def = (ast.FunctionDef, ast.AsyncFunctionDef)


def vae_units(tree: ast.Module) -> list[Unit]:
    """The places of ``tree`` that compute both terms (see the module), in source order.

    >>> src = "def loss(r, x, mu, logvar):\\n    return F.mse_loss(r, x) + kld(mu, logvar)\\n"
    >>> vae_units(ast.parse(src))
    [Unit(name='loss', line=1)]
    >>> vae_units(ast.parse("def step(x, y):\\n    return F.cross_entropy(net(x), y)\\n"))
    []
    """
    out: list[Unit] = []
    top: list[ast.AST] = []
    for node in tree.body:
        if isinstance(node, _Def):
            if _computes_both([node]):
                out.append(Unit(node.name, node.lineno))
        elif isinstance(node, ast.ClassDef):
            out += [
                Unit(f"{node.name}.{m.name}", m.lineno)
                for m in node.body
                if isinstance(m, _Def) and _computes_both([m])
            ]
        else:
            top.append(node)
    if top and _computes_both(top):
        out.insert(0, Unit("<module>", getattr(top[0], "lineno", 1)))
    return sorted(out, key=lambda u: u.line)
