"""Static reading of a user's loss file: candidate functions, argument roles, and
line numbers of the constructs that findings point at. Nothing here executes the file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from vaeloss.errors import LossCheckError

__all__ = ["FunctionInfo", "SourceInfo", "assign_roles", "read_source", "select_function"]

RECON_NAMES = (
    "recon_x",
    "recon",
    "x_recon",
    "x_hat",
    "xhat",
    "x_rec",
    "recons",
    "reconstruction",
    "outputs",
    "output",
    "x_decoded_mean",
    "x_decoded",
    "decoded",
    "x_tilde",
    "pred",
    "y_pred",
    "preds",
    "logits",
    "x_logits",
    "recon_logits",
    "probs",
    "x_mean",
    "x_prob",
    "x_probs",
    "recon_batch",
    "out",
    "x_out",
    "reconstructed",
    "generated",
    "x_pred",
)
DATA_NAMES = (
    "x",
    "inputs",
    "input",
    "target",
    "targets",
    "data",
    "images",
    "image",
    "x_true",
    "y_true",
    "orig",
    "original",
    "batch",
    "y",
    "x_in",
    "img",
    "imgs",
    "real",
    "x_input",
    "obs",
)
MU_NAMES = (
    "mu",
    "mean",
    "z_mean",
    "mu_z",
    "z_mu",
    "means",
    "mus",
    "loc",
    "q_mu",
    "posterior_mean",
    "m",
    "mu_q",
    "latent_mean",
    "z_loc",
)
SCALE_NAMES = (
    "logvar",
    "log_var",
    "z_log_var",
    "z_logvar",
    "lv",
    "log_sigma2",
    "logvar_z",
    "z_log_sigma",
    "log_sigma",
    "logsigma",
    "log_std",
    "logstd",
    "z_log_std",
    "std",
    "sigma",
    "z_std",
    "scale",
    "var",
    "variance",
    "z_var",
    "sd",
    "s",
    "log_variance",
    "logv",
)
SAMPLE_NAMES = ("z", "z_sample", "sample", "z_sampled")
_SCALE_HINT = {
    "log_std": ("log_std", "logstd", "z_log_std", "log_sigma", "logsigma"),
    "std": ("std", "sigma", "z_std", "sd", "scale"),
    "var": ("var", "variance", "z_var"),
}


@dataclass
class FunctionInfo:
    """A top-level function of the file and its parameters."""

    name: str
    line: int
    required: list[str]
    defaults: dict[str, object]
    first_line: int
    last_line: int
    varargs: bool = False

    @property
    def n_required(self) -> int:
        """Required tensor parameters; ``*args`` counts as the four positional tensors."""
        return max(len(self.required), 4) if self.varargs else len(self.required)


@dataclass
class SourceInfo:
    """What the file says, statically."""

    path: Path
    functions: list[FunctionInfo]
    lines: dict[str, list[int]] = field(default_factory=dict)


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def _function_info(node: ast.FunctionDef, prefix: str) -> FunctionInfo:
    """Required parameters and literal defaults of a function (``self`` dropped for methods)."""
    args = node.args
    pos = [a.arg for a in args.posonlyargs + args.args]
    n_def = len(args.defaults)
    required = pos[: len(pos) - n_def] if n_def else pos
    defaults = {a: _literal(d) for a, d in zip(pos[len(pos) - n_def :], args.defaults)}
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        if d is None:
            required.append(a.arg)
        else:
            defaults[a.arg] = _literal(d)
    if prefix and required and required[0] in ("self", "cls"):
        required = required[1:]
    end = node.end_lineno or node.lineno
    info = FunctionInfo(prefix + node.name, node.lineno, required, defaults, node.lineno, end)
    info.varargs = args.vararg is not None
    return info


def read_source(path: Path) -> SourceInfo:
    """Parse ``path``; raise :class:`LossCheckError` if it is missing or not Python."""
    if not path.exists():
        raise LossCheckError(
            f"Expected a Python file but got path={str(path)!r}, which does not exist. "
            f"Try 'vaeloss check path/to/loss.py'."
        )
    if path.is_dir():
        raise LossCheckError(
            f"Expected a Python file but got path={str(path)!r}, a directory. "
            f"Try the file that defines your loss."
        )
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise LossCheckError(
            f"Expected valid Python but {path} has a syntax error at line {exc.lineno}: "
            f"{exc.msg}. Try 'python -m py_compile {path}' to see it."
        ) from None
    except UnicodeDecodeError:
        raise LossCheckError(f"Expected a UTF-8 Python file but got path={str(path)!r}.") from None
    functions = [_function_info(node, "") for node in tree.body if isinstance(node, ast.FunctionDef)]
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef):
            functions += [
                _function_info(node, f"{cls.name}.")
                for node in cls.body
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("__")
            ]
    return SourceInfo(path, functions, _construct_lines(tree))


def _construct_lines(tree: ast.Module) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}

    def add(key: str, line: int) -> None:
        found.setdefault(key, [])
        if line not in found[key]:
            found[key].append(line)

    recon_calls = (
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "mse_loss",
        "l1_loss",
        "BCELoss",
        "MSELoss",
        "BCEWithLogitsLoss",
        "log_prob",
        "binary_crossentropy",
        "gaussian_nll_loss",
        "smooth_l1_loss",
    )
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            name = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else (node.func.id if isinstance(node.func, ast.Name) else "")
            )
            for kw in node.keywords:
                if kw.arg in ("size_average", "reduce"):
                    add("deprecated_reduction", line)
            if name in recon_calls:
                add("recon", line)
            if name in ("item", "detach", "numpy", "tolist"):
                add("gradient_cut", line)
            if name in ("kl_divergence", "exp") or (name == "sum" and "logvar" in ast.unparse(node)):
                add("kl", line)
            if name in ("clamp", "clamp_min", "max", "maximum") and "kl" in ast.unparse(node).lower():
                add("free_bits", line)
        elif isinstance(node, ast.Attribute) and node.attr == "data":
            add("gradient_cut", line)
        elif isinstance(node, ast.Constant) and node.value == 784:
            add("hard_coded_784", line)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if isinstance(node.right, ast.Constant) and node.right.value == 2:
                text = ast.unparse(node.left)
                if "-" in text:
                    add("recon", line)
        if isinstance(node, ast.Return):
            add("return", line)
    return found


def select_function(info: SourceInfo, name: str | None) -> tuple[FunctionInfo, str]:
    """The loss function to check, and how it was chosen."""
    if name is not None:
        for f in info.functions:
            if f.name == name:
                return f, f"function {name!r} as named"
        listed = ", ".join(f.name for f in info.functions) or "none"
        raise LossCheckError(
            f"Expected a function named {name!r} in {info.path} but found: {listed}. "
            f"Try 'vaeloss check {info.path}:FUNCTION' with one of those."
        )
    candidates = [
        f
        for f in info.functions
        if f.n_required >= 4 or (f.n_required >= 2 and any(w in f.name.lower() for w in ("loss", "elbo")))
    ]
    if not candidates:
        raise LossCheckError(
            f"Expected a loss function taking (reconstruction, data, mu, logvar) in {info.path} "
            f"but found none among its top-level functions "
            f"({', '.join(f.name for f in info.functions) or 'none'}). "
            f"Try 'vaeloss check {info.path}:FUNCTION'."
        )
    if len(candidates) == 1:
        return candidates[0], f"the only loss-like function, {candidates[0].name!r}"
    named = [f for f in candidates if "loss" in f.name.lower() or "elbo" in f.name.lower()]
    four = [f for f in named if f.n_required == 4] or [f for f in candidates if f.n_required == 4]
    if len(four) == 1:
        return four[0], f"{four[0].name!r}: the one loss-named function with 4 tensor arguments"
    listed = ", ".join(f"{f.name} (line {f.line})" for f in candidates)
    raise LossCheckError(
        f"Expected one loss function in {info.path} but found several candidates: {listed}. "
        f"Try 'vaeloss check {info.path}:FUNCTION' with one of them."
    )


def _score(name: str, names: tuple[str, ...]) -> int:
    low = name.lower()
    if low in names:
        return 100 - names.index(low)
    return 0


def assign_roles(params: list[str]) -> list[dict[str, str]]:
    """Candidate role assignments for a function's tensor parameters, best first.

    Each assignment maps a role ("recon", "data", "mu", "scale", "z") to a parameter name.
    Positions decide when names do not: the first two are data-side, then the latents.
    """
    if len(params) < 4:
        return []
    extra = [p for p in params[4:] if p.lower() in SAMPLE_NAMES]
    base = params[:4]
    first, second = base[0], base[1]
    recon_first = _score(first, RECON_NAMES) + _score(second, DATA_NAMES)
    data_first = _score(first, DATA_NAMES) + _score(second, RECON_NAMES)
    pairs = [(first, second), (second, first)]
    if data_first > recon_first:
        pairs.reverse()
    lat = [(base[2], base[3])]
    if _score(base[2], SCALE_NAMES) > _score(base[2], MU_NAMES) and _score(base[3], MU_NAMES):
        lat = [(base[3], base[2])]
    lat.append((lat[0][1], lat[0][0]))
    out = []
    for recon, data in pairs:
        for mu, scale in lat:
            roles = {"recon": recon, "data": data, "mu": mu, "scale": scale}
            if extra:
                roles["z"] = extra[0]
            out.append(roles)
    return out


def scale_hint(name: str) -> str:
    """The parameterisation a scale argument's name suggests (a tie-breaker only)."""
    low = name.lower()
    for kind, names in _SCALE_HINT.items():
        if low in names:
            return kind
    return "logvar"
