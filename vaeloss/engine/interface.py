"""How to call a VAE module: what its encoder takes and how its outputs are read.

A user's model is called as written. Its interface is found by probing it with two rows of
data (image-shaped ``[N, C, H, W]`` first for image data, then flat ``[N, D]``):

* the posterior from ``encode(x)``, else from ``forward(x)``, returning a tuple or list
  (``(mu, logvar)``, PyTorch-VAE's ``[mu, log_var]``; from ``forward``: ``(recon, mu,
  logvar)``, PyTorch-VAE's ``[recons, input, mu, log_var]``, ``(recon, z, mu, logvar)``),
  a dict with named entries (``mu``/``mean``/``loc``..., ``logvar``/``log_var``/``std``...)
  or a ``torch.distributions.Normal``. Among several ``[N, k]`` outputs of ``forward``, a
  sample ``z`` is the one that changes between two calls in ``eval()``. A tuple's scale is
  read as a log-variance; one that is positive everywhere and made by ``exp``, ``softplus``...
  is refused (``--model-api`` says whether it is a std or a variance);
* the decoder: ``decode(z)``, else a ``decoder`` submodule, mapping ``[N, k]`` to ``N x D``
  values (any shape).

``--model-api METHOD:NAMES`` states it instead (``encode:mu,logvar``, ``encode:mu,std``,
``forward:recon,input,mu,logvar``), NAMES being the positions of a tuple: ``mu``, ``logvar``,
``std``, ``var``, and anything else (``recon``, ``input``, ``z``, ``_``) ignored.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

import vaeloss
from vaeloss.engine.decoder_output import last_operation
from vaeloss.errors import InvalidArgumentError

__all__ = [
    "ModelAPI",
    "ModelInterface",
    "decode_with",
    "encode_with",
    "find_interface",
    "parse_model_api",
    "user_line",
]

ScaleKind = Literal["logvar", "std", "var"]
_MU_KEYS = ("mu", "mean", "loc", "z_mean", "mu_z", "z_mu", "q_mu", "posterior_mean")
_SCALE_KEYS: dict[str, ScaleKind] = {
    "logvar": "logvar",
    "log_var": "logvar",
    "logvariance": "logvar",
    "log_variance": "logvar",
    "z_log_var": "logvar",
    "z_logvar": "logvar",
    "std": "std",
    "sigma": "std",
    "scale": "std",
    "z_std": "std",
    "var": "var",
    "variance": "var",
}
_SCALE_NAMES: tuple[ScaleKind, ...] = ("logvar", "std", "var")


@dataclass(frozen=True)
class ModelAPI:
    """Where a model's posterior comes from.

    Attributes:
        method: "encode" or "forward".
        container: "sequence" (tuple/list, read by position), "dict" (by key) or "normal"
            (a ``torch.distributions`` Normal: its loc and scale).
        mu, scale: the positions (sequence) or keys (dict) of the mean and scale.
        scale_kind: what the scale entry is: "logvar", "std" or "var".
        names: the positions' names, for the report (sequence only).
    """

    method: Literal["encode", "forward"]
    container: Literal["sequence", "dict", "normal"]
    mu: int | str = 0
    scale: int | str = 1
    scale_kind: ScaleKind = "logvar"
    names: tuple[str, ...] = ()

    def describe(self) -> str:
        """``encode(x) -> (mu, logvar)``, ``forward(x) -> dict[mu, log_var]``..."""
        if self.container == "normal":
            return f"{self.method}(x) -> Normal(mu, std)"
        if self.container == "dict":
            return f"{self.method}(x) -> dict[{self.mu}, {self.scale}]"
        return f"{self.method}(x) -> ({', '.join(self.names)})"

    def spec(self) -> str:
        """The ``--model-api`` text that states this API (sequence containers)."""
        return f"{self.method}:{','.join(self.names)}"


def parse_model_api(text: str) -> ModelAPI:
    """Read ``--model-api METHOD:NAMES``.

    >>> parse_model_api("forward:recon,input,mu,logvar").describe()
    'forward(x) -> (recon, input, mu, logvar)'
    """
    method, _, rest = text.partition(":")
    names = tuple(n.strip() for n in rest.split(",") if n.strip())
    scales = [n for n in names if n in _SCALE_NAMES]
    if method not in ("encode", "forward") or names.count("mu") != 1 or len(scales) != 1:
        raise InvalidArgumentError(
            f"Expected --model-api METHOD:NAMES with METHOD encode or forward and NAMES the "
            f"positions of its outputs, naming mu once and one of logvar, std, var, but got "
            f"model_api={text!r}. Try --model-api encode:mu,logvar or --model-api "
            f"forward:recon,input,mu,logvar."
        )
    kind = _SCALE_KEYS[scales[0]]
    where: Literal["encode", "forward"] = "encode" if method == "encode" else "forward"
    return ModelAPI(where, "sequence", names.index("mu"), names.index(kind), kind, names)


@dataclass(frozen=True)
class ModelInterface:
    """How to call one model: its API, the shape one input row takes, its latent dim and
    its decoder (``decode`` method or ``decoder`` submodule)."""

    api: ModelAPI
    input_shape: tuple[int, ...]
    latent_dim: int
    decoder: Literal["decode", "decoder"] = "decode"
    output_shape: tuple[int, ...] = ()
    """The shape of one row of the decoder's output (as it returns it, before flattening)."""

    def output_mismatch(self) -> str | None:
        """A note when the decoder's rows have neither the inputs' shape nor the flat one."""
        D = math.prod(self.input_shape)
        if not self.output_shape or self.output_shape in (self.input_shape, (D,)):
            return None
        shape = "x".join(str(s) for s in self.output_shape)
        given = "x".join(str(s) for s in self.input_shape)
        return (
            f"the decoder returns rows of shape {shape} for inputs of shape {given}: the audit "
            f"compares them flattened (both hold {D} values), but a loss that compares the two "
            f"tensors as they are would fail or broadcast; check the decoder's last view or reshape."
        )

    def describe(self) -> str:
        shape = "x".join(str(s) for s in self.input_shape)
        dec = "decode(z)" if self.decoder == "decode" else "its decoder submodule"
        return f"{self.api.describe()} on inputs of shape [N, {shape}]; {dec} for reconstructions"


def to_logvar(scale: Tensor, kind: ScaleKind) -> Tensor:
    """The log-variance from a scale entry of the given kind."""
    if kind == "logvar":
        return scale
    if kind == "std":
        return 2 * torch.log(scale)
    return torch.log(scale)


def read_posterior(out: Any, api: ModelAPI) -> tuple[Tensor, Tensor]:
    """(mu, logvar) [N, k] from an encoder's output as ``api`` says (no checks: runs in vmap)."""
    if api.container == "normal":
        base = getattr(out, "base_dist", out)
        return base.loc, to_logvar(base.scale, "std")
    return out[api.mu], to_logvar(out[api.scale], api.scale_kind)


def encode_with(module: nn.Module, x: Tensor, iface: ModelInterface) -> tuple[Tensor, Tensor]:
    """(mu, logvar) [N, k] of ``module`` for flat data ``x`` [N, D]."""
    xs = x.reshape(x.shape[0], *iface.input_shape)
    fn = getattr(module, "encode") if iface.api.method == "encode" else module  # noqa: B009
    return read_posterior(fn(xs), iface.api)


def decode_with(module: nn.Module, z: Tensor, iface: ModelInterface) -> Tensor:
    """The decoder's output for z [N, k], flattened to [N, D]."""
    return _reconstructions(getattr(module, iface.decoder)(z)).reshape(z.shape[0], -1)


def _reconstructions(out: Any) -> Any:
    """The decoder's tensor of reconstructions: its output, or the first of a tuple or list."""
    return out if isinstance(out, Tensor) else out[0]


def _is_normal(out: Any) -> bool:
    base = getattr(out, "base_dist", out)
    return isinstance(base, torch.distributions.Normal)


def _rows(t: Any, n: int) -> bool:
    return isinstance(t, Tensor) and t.dim() == 2 and t.shape[0] == n and t.is_floating_point()


def _posterior_api(
    out: Any, method: Literal["encode", "forward"], n: int, D: int, again: Any
) -> ModelAPI | None:
    """The API that reads ``out`` (a second call's output ``again`` tells samples apart)."""
    if _is_normal(out):
        return ModelAPI(method, "normal")
    if isinstance(out, dict):
        mu = next((k for k in out if str(k).lower() in _MU_KEYS and _rows(out[k], n)), None)
        sc = next((k for k in out if str(k).lower() in _SCALE_KEYS and _rows(out[k], n)), None)
        if mu is None or sc is None:
            return None
        return ModelAPI(method, "dict", mu, sc, _SCALE_KEYS[str(sc).lower()])
    if not isinstance(out, (tuple, list)):
        return None
    # the latent-sized outputs: 2-D [N, k] (for forward, not the N x D reconstruction or input)
    cands = [i for i, t in enumerate(out) if _rows(t, n) and (method == "encode" or t.shape[1] != D)]
    groups = [[i for i in cands if out[i].shape == out[j].shape] for j in cands]
    group = next((g for g in groups if len(g) >= 2), [])
    deterministic = [i for i in group if isinstance(again, (tuple, list)) and torch.equal(out[i], again[i])]
    pick = deterministic if len(group) > 2 else group
    if len(pick) != 2:
        return None
    names = ["_"] * len(out)
    names[pick[0]], names[pick[1]] = "mu", "logvar"
    for i in group:
        if i not in pick:
            names[i] = "z"
    if method == "forward":
        data_sized = [
            i for i, t in enumerate(out) if isinstance(t, Tensor) and t.dim() >= 2 and t[0].numel() == D
        ]
        for j, i in enumerate(data_sized):
            names[i] = "recon" if j == 0 else "input"
    return ModelAPI(method, "sequence", pick[0], pick[1], "logvar", tuple(names))


def _describe(out: Any) -> str:
    if isinstance(out, Tensor):
        return f"a tensor of shape {list(out.shape)}"
    if isinstance(out, dict):
        return "a dict with " + ", ".join(f"{k}: {_describe(v)}" for k, v in out.items())
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of " + ", ".join(_describe(v) for v in out)
    return type(out).__name__


def _input_shapes(shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Input shapes to try: the data's own first (C, H, W), then flat; flat square data also
    as one-channel images."""
    D = math.prod(shape)
    shapes = [tuple(shape)]
    if len(shape) != 1:
        shapes.append((D,))
    else:
        side = math.isqrt(D)
        if side * side == D:
            shapes.append((1, side, side))
    return shapes


@torch.no_grad()
def find_interface(
    model: nn.Module, x: Tensor, data_shape: Sequence[int], *, api: ModelAPI | None = None
) -> ModelInterface:
    """Probe ``model`` (in ``eval()``) with data rows ``x`` [N, D] and find how to call it.

    Raises:
        InvalidArgumentError: no way of calling it gives a posterior and reconstructions; the
            message says what each call returned and how to state the API (``--model-api``).
    """
    was_training = model.training
    model.eval()
    try:
        return _find(model, x, data_shape, api)
    finally:
        model.train(was_training)


def _find(model: nn.Module, x: Tensor, data_shape: Sequence[int], api: ModelAPI | None) -> ModelInterface:
    n, D = x.shape[0], x.shape[1]
    name = type(model).__name__
    decoder: Literal["decode", "decoder"] | None = (
        "decode"
        if callable(getattr(model, "decode", None))
        else "decoder"
        if isinstance(getattr(model, "decoder", None), nn.Module)
        else None
    )
    if decoder is None:
        raise InvalidArgumentError(
            f"Expected {name} to have decode(z) (or a decoder submodule) but it has neither: the "
            f"audit decodes its own latent samples (the IWAE bound, latent usage). Try adding "
            f"def decode(self, z): return ... to {name}."
        )
    methods: list[Literal["encode", "forward"]] = (
        [api.method] if api is not None else (["encode"] if callable(getattr(model, "encode", None)) else [])
    )
    if api is None:
        methods.append("forward")
    seen: list[str] = []
    raised: list[str] = []
    for shape in _input_shapes(data_shape):
        xs = x.reshape(n, *shape)
        for method in methods:
            fn = getattr(model, "encode") if method == "encode" else model  # noqa: B009
            try:
                out = fn(xs)
                again = fn(xs) if api is None and isinstance(out, (tuple, list)) else None
            except Exception as exc:  # noqa: BLE001 - the user's model: say what it raised
                said = (
                    f"{method}(x of shape {[n, *shape]}) raised {type(exc).__name__}: {exc}{user_line(exc)}"
                )
                seen.append(said)
                raised.append(said)
                continue
            found = api if api is not None else _posterior_api(out, method, n, D, again)
            if found is None:
                seen.append(f"{method}(x of shape {[n, *shape]}) returned {_describe(out)}")
                continue
            try:
                mu, logvar = read_posterior(out, found)
            except Exception as exc:  # noqa: BLE001
                seen.append(f"{method}(x) could not be read as {found.describe()}: {exc}")
                continue
            if not (_rows(mu, n) and mu.shape == logvar.shape):
                seen.append(f"{method}(x) gave mu {_describe(mu)} and a scale {_describe(logvar)}")
                continue
            if api is None:
                _check_scale_is_logvar(fn, xs, found, method, logvar)
            iface = ModelInterface(found, tuple(shape), int(mu.shape[1]), decoder)
            return replace(iface, output_shape=_check_decoder(model, iface, D))
    if raised and (api is not None or len(raised) == len(seen)):
        # every call raised (or the stated API's did): an error in the model, not an unknown API
        raise InvalidArgumentError(
            f"Expected {name} to run on the data but {'; '.join(raised)}. Try calling it on a "
            f"batch of the data yourself (image data are tried as [N, C, H, W], then flat [N, D])."
        )
    tried = "; ".join(seen) or "nothing could be called"
    raise InvalidArgumentError(
        f"Expected {name} to give a Gaussian posterior (mu, logvar) from encode(x) or forward(x) "
        f"but {tried}. Try --model-api METHOD:NAMES naming the positions of the outputs, e.g. "
        f"--model-api encode:mu,logvar, --model-api encode:mu,std or --model-api "
        f"forward:recon,input,mu,logvar, and --init NAME=VALUE for constructor arguments."
    )


_POSITIVE_OPS = frozenset(
    {
        "exp",
        "softplus",
        "sigmoid",
        "abs",
        "square",
        "sqrt",
        "pow",
        "__pow__",
        "relu",
        "elu",
        "clamp",
        "clamp_min",
    }
)
"""Operations that make a positive output: a standard deviation or a variance, not a log-variance."""
_SHIFTS = frozenset({"add", "__add__", "__radd__", "mul", "__mul__", "__rmul__"})


def user_line(exc: BaseException) -> str:
    """`` (at line 12 of vae.py: h = self.fc(h))``: the innermost frame of the traceback outside
    torch, vaeloss and installed packages (the user's code), or ``""``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _library_file(f.filename)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at line {f.lineno} of {Path(f.filename).name}: {(f.line or '').strip()})"


_LIBRARIES = tuple(str(Path(str(m.__file__)).resolve().parent) for m in (torch, vaeloss))


def _library_file(filename: str) -> bool:
    path = str(Path(filename).resolve())
    return path.startswith(_LIBRARIES) or "site-packages" in path or filename.startswith("<")


def _check_scale_is_logvar(fn: Any, xs: Tensor, api: ModelAPI, method: str, logvar: Tensor) -> None:
    """Refuse to read a positive scale made by exp, softplus... as a log-variance (a tuple's
    entries are read by position; ``(mu, std)`` read as ``(mu, logvar)`` would be wrong)."""
    if api.container != "sequence" or api.scale_kind != "logvar" or not bool((logvar > 0).all()):
        return
    op, _ = last_operation(fn, xs, select=lambda out: out[api.scale], through=_SHIFTS)
    if op in _POSITIVE_OPS:
        names = list(api.names)
        std, var = ",".join(names).replace("logvar", "std"), ",".join(names).replace("logvar", "var")
        raise InvalidArgumentError(
            f"Expected the scale that {method}(x) returns at position {api.scale} to be a "
            f"log-variance but it is positive everywhere and made by {op}: it looks like a standard "
            f"deviation or a variance, and reading it as a log-variance would be wrong. Try "
            f"--model-api {method}:{std} or --model-api {method}:{var} (or --model-api "
            f"{api.spec()} if it is a log-variance)."
        )


def _check_decoder(model: nn.Module, iface: ModelInterface, D: int) -> tuple[int, ...]:
    """The shape of one row of the decoder's output; raises when it cannot be used."""
    z = torch.zeros(2, iface.latent_dim)
    what = "decode(z)" if iface.decoder == "decode" else "decoder(z)"
    try:
        raw = getattr(model, iface.decoder)(z)
    except Exception as exc:  # noqa: BLE001
        raise InvalidArgumentError(
            f"Expected {what} to take latents of shape [N, {iface.latent_dim}] (the size of the "
            f"posterior mean) but it raised {type(exc).__name__}: {exc}."
        ) from None
    first = raw[0] if isinstance(raw, (tuple, list)) and raw else raw
    if not isinstance(first, Tensor):
        raise InvalidArgumentError(
            f"Expected {what} to return a tensor of reconstructions (logits, probabilities or a "
            f"mean) but it returned {_describe(raw)}. Try a decode method that returns that tensor."
        )
    try:
        out = first.reshape(z.shape[0], -1)  # as decode_with reads it
    except RuntimeError as exc:
        raise InvalidArgumentError(
            f"Expected {what} to take latents of shape [N, {iface.latent_dim}] (the size of the "
            f"posterior mean) but it raised {type(exc).__name__}: {exc}."
        ) from None
    if out.shape[1] != D:
        raise InvalidArgumentError(
            f"Expected {what} to return {D} values per row (the data's dimension) but it returned "
            f"{out.shape[1]}. Try data of the shape the model was written for."
        )
    return tuple(first.shape[1:])
