"""Probing a loss computed inside a model: a training step, ``loss(x, ...)``, or a ``forward``
that returns the loss (runs in the worker process).

The model is run once on a batch shaped for it (read from its first layer) with forward hooks
that record every submodule's output; the submodules that give the posterior mean, the
posterior scale (or one ``[B, 2k]`` head holding both) and the decoder output are found by
name and shape (``--mu``, ``--scale``, ``--recon`` name them when the guess is ambiguous).
Then every probe call replaces those outputs with the probe's controlled tensors (forward
hooks that return them), feeds the batch, and reads the loss the method returns: the fit
``a*NLL + b*KL + c`` is then the same as for a plain loss function. The model runs in float64,
so that the fit is exact.
"""

from __future__ import annotations

import ast
import inspect
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from vaeloss.check.forms import CallForm, Slot, function_tree
from vaeloss.check.model_layers import is_keras, keras_input_shapes, submodules
from vaeloss.check.objects import LossObject, StateGuard
from vaeloss.check.probe import Caller, CallWatch
from vaeloss.check.probe.backend import Backend
from vaeloss.check.source import stored_loss_attribute

__all__ = [
    "ModelCaller",
    "ModelError",
    "Taps",
    "WrongBackend",
    "find_taps",
    "model_callers",
    "model_of",
    "owner_of",
    "posterior_names",
]

_MU_WORDS = ("mu", "mean", "loc", "21")
_SCALE_WORDS = ("var", "sigma", "std", "scale", "22", "lv")
_SIDES = (28, 32, 64)


class ModelError(Exception):
    """The model cannot be probed through; the message says why and what to name."""


class WrongBackend(ModelError):
    """A Keras model on a backend whose layers take no forward hooks (its message is whole)."""


def owner_of(obj: LossObject) -> object | None:
    """The object a loss belongs to (a bound method's object, or the object itself)."""
    return obj.instance if obj.instance is not None else getattr(obj.call, "__self__", None)


def model_of(obj: LossObject) -> nn.Module | None:
    """The ``nn.Module`` a loss belongs to (a bound method's object, or the module itself)."""
    owner = owner_of(obj)
    return owner if isinstance(owner, nn.Module) else None


def image_shapes(D: int) -> list[tuple[int, ...]]:
    """The square images of ``D`` values with 1 or 3 channels, channels first, then last.

    >>> image_shapes(784), image_shapes(3072), image_shapes(100)
    ([(1, 28, 28), (28, 28, 1)], [(3, 32, 32), (32, 32, 3)], [(1, 10, 10), (10, 10, 1)])
    """
    out: list[tuple[int, ...]] = []
    for channels in (1, 3):
        side = math.isqrt(D // channels)
        if D % channels == 0 and side * side * channels == D and side >= 8:
            out += [(channels, side, side), (side, side, channels)]
    return out


def input_shapes(model: nn.Module, given: tuple[int, ...] | None) -> list[tuple[int, ...]]:
    """The shapes of one sample the model may take: ``given``, else from its first layer (a
    ``Linear(784, ...)`` may flatten 1x28x28 images itself: flat first, then the images)."""
    if given is not None:
        return [given]
    if is_keras(model):
        return keras_input_shapes(model)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return [(m.in_features,), *image_shapes(m.in_features)]
        if isinstance(m, nn.Conv2d):
            return [(m.in_channels, side, side) for side in _SIDES]
        if isinstance(m, nn.Conv1d):
            return [(m.in_channels, side) for side in _SIDES]
    return []


def _batch_builders(fn: Callable[..., Any], param: str) -> list[Callable[[Tensor], Any]]:
    """Ways to hand the data to the method's batch parameter, as its body reads it."""
    tree = function_tree(fn)
    keys: list[str] = []
    unpacked = False
    if tree is not None:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id == param
            ):
                if isinstance(node.slice, ast.Constant):
                    if isinstance(node.slice.value, str):
                        keys.append(node.slice.value)
                    elif isinstance(node.slice.value, int):
                        unpacked = True
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id == param:
                unpacked = unpacked or isinstance(node.targets[0], (ast.Tuple, ast.List))

    def labels(x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], dtype=torch.long)

    if keys:
        data = next(
            (k for k in keys if k.lower() in ("x", "image", "images", "img", "input", "inputs", "data")),
            keys[0],
        )
        return [lambda x: {**{k: labels(x) for k in keys}, data: x}]
    if unpacked:
        return [lambda x: (x, labels(x)), lambda x: [x, labels(x)]]
    return [lambda x: x, lambda x: (x, labels(x))]


@dataclass(frozen=True)
class Taps:
    """Where the probe's tensors enter the model: module names (``mu == scale`` for one head
    holding both), the latent dim, and the decoder output's shape per sample."""

    mu: str
    scale: str
    recon: str
    k: int
    recon_shape: tuple[int, ...]
    draws: int = 0  # S when the decoder gives S draws per sample, [S, B, ...] (0: one, [B, ...])

    @property
    def joint(self) -> bool:
        return self.mu == self.scale


def _record(model: nn.Module, run: Callable[[], Any]) -> list[tuple[str, Tensor]]:
    """Every submodule's tensor output of one run, in the order they were produced."""
    records: list[tuple[str, Tensor]] = []
    hooks = []
    for name, module in submodules(model):

        def hook(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
            if isinstance(out, Tensor):
                records.append((name, out))

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return records


def _named(name: str, words: tuple[str, ...]) -> bool:
    last = name.rsplit(".", 1)[-1].lower()
    return any(w in last for w in words)


def posterior_names(names: list[str]) -> tuple[list[str], list[str]]:
    """The submodule names that say "posterior mean" and those that say "posterior scale", in
    order (the rule check and the callbacks share).

    >>> posterior_names(["fc1", "fc_mu", "fc_logvar", "fc3"])
    (['fc_mu'], ['fc_logvar'])
    """
    mus = [n for n in names if _named(n, _MU_WORDS) and not _named(n, ("var",))]
    return mus, [n for n in names if _named(n, _SCALE_WORDS)]


def find_taps(model: nn.Module, run: Callable[[], Any], B: int, D: int, names: dict[str, str | None]) -> Taps:
    """Find the posterior and decoder submodules from one recorded run (see the module doc).

    Raises:
        ModelError: they cannot be told apart; the message lists the candidates.
    """
    records = _record(model, run)
    outputs = {name: out for name, out in records}
    flat = [(n, o) for n, o in records if o.dim() == 2 and o.shape[0] == B and o.shape[1] < D]
    recon_name = names.get("recon")
    if recon_name is None:
        sized = [n for n, o in records if o.shape[:1] == (B,) and o[0].numel() == D]
        sized = sized or [n for n, o in records if o.dim() >= 3 and o.shape[1] == B and o[0, 0].numel() == D]
        if not sized:
            raise ModelError(
                f"no submodule of {type(model).__name__} returns one output of {D} values per sample "
                f"(or S of them, [S, B, ...])"
            )
        recon_name = sized[-1]
    mu_name, scale_name = names.get("mu"), names.get("scale")
    if mu_name is None or scale_name is None:
        mus, scales = posterior_names([n for n, _ in flat])
        if mus and scales:
            mu_name, scale_name = mu_name or mus[-1], scale_name or scales[-1]
        else:
            linear = {n: m for n, m in submodules(model) if isinstance(m, nn.Linear)}
            pairs = [
                (a, b)
                for (a, _), (b, _) in zip(flat, flat[1:])
                if a in linear
                and b in linear
                and (linear[a].in_features, linear[a].out_features)
                == (linear[b].in_features, linear[b].out_features)
            ]
            # a [B, 2k] head: a Linear whose half width is the input width of another Linear
            widths = {m.in_features for m in linear.values()}
            heads = [n for n, o in flat if n in linear and o.shape[1] % 2 == 0 and o.shape[1] // 2 in widths]
            if pairs:
                mu_name, scale_name = pairs[-1]
            elif heads:
                mu_name = scale_name = heads[-1]
            else:
                found = ", ".join(f"{n} {tuple(o.shape)}" for n, o in flat) or "none"
                raise ModelError(
                    f"no submodules of {type(model).__name__} give the posterior mean and scale "
                    f"(outputs of shape [B, k]: {found}); name them with --mu NAME --scale NAME"
                )
    for label, name in (("--mu", mu_name), ("--scale", scale_name), ("--recon", recon_name)):
        if name not in outputs:
            raise ModelError(f"{label} {name}: no submodule of that name ran (ran: {', '.join(outputs)})")
    width = outputs[mu_name].shape[1]
    k = width // 2 if mu_name == scale_name else width
    recon = outputs[recon_name]
    if recon.shape[0] == B and recon[0].numel() == D:
        return Taps(mu_name, scale_name, recon_name, k, tuple(recon.shape[1:]))
    return Taps(mu_name, scale_name, recon_name, k, tuple(recon.shape[2:]), draws=recon.shape[0])


class _Replacements:
    """The tensors the taps' forward hooks return: one set per model, shared by its callers
    (hooks are installed once; the caller about to run sets ``current``)."""

    def __init__(self, model: nn.Module, taps: Taps) -> None:
        self.current: dict[str, Tensor] = {}
        modules = dict(submodules(model))

        def replace(key: str) -> Callable[..., Tensor]:
            def hook(mod: nn.Module, args: Any, out: Tensor) -> Tensor:
                return self.current[key].to(out.dtype)

            return hook

        self.hooks = [modules[taps.recon].register_forward_hook(replace("recon"))]
        if taps.joint:
            self.hooks.append(modules[taps.mu].register_forward_hook(replace("head")))
        else:
            self.hooks.append(modules[taps.mu].register_forward_hook(replace("mu")))
            self.hooks.append(modules[taps.scale].register_forward_hook(replace("scale")))


@dataclass(frozen=True)
class _Stored:
    """A loss a model stored on itself, read as its ``.loss``."""

    loss: Any


def stored_loss(fn: Callable[..., Any]) -> str | None:
    """The attribute a model's method stores its loss in (see
    :func:`~vaeloss.check.source.stored_loss_attribute`)."""
    tree = function_tree(fn)
    return stored_loss_attribute(tree) if tree is not None else None


class ModelCaller(Caller):
    """Calls a model's loss method on a batch, with the posterior and decoder outputs of its
    submodules replaced by the probe's tensors."""

    def __init__(
        self,
        obj: LossObject,
        taps: Taps,
        replacements: _Replacements,
        batch: Callable[[Tensor], Any],
        batch_param: str,
        extra: dict[str, object],
        shape: tuple[int, ...],
        binary: bool,
        guard: StateGuard,
        timings: list[float],
        watch: CallWatch | None = None,
        backend: Backend | None = None,
    ) -> None:
        form = CallForm((Slot(batch_param, "tensor", ("data",)),))
        super().__init__(obj, form, extra, shape, binary, guard, timings, watch, backend)
        self.taps, self.replacements, self.batch, self.batch_param = taps, replacements, batch, batch_param
        self.owner = model_of(obj)
        self.stored = stored_loss(obj.function or obj.call) if self.owner is not None else None

    def with_shape(self, shape: tuple[int, ...]) -> Caller:
        if shape != self.shape:
            raise ModelError(f"the model takes samples of shape {self.shape} only")
        return self

    def describe(self) -> dict[str, str]:
        t = self.taps
        scale = f"{t.scale} (second half of its output)" if t.joint else f"{t.scale} (its output)"
        mu = f"{t.mu} (first half of its output)" if t.joint else f"{t.mu} (its output)"
        recon = (
            f"{t.recon} (its output, {t.draws} draws [S, B, ...] of it)"
            if t.draws
            else f"{t.recon} (its output)"
        )
        return {"data": f"{self.batch_param} (the batch)", "mu": mu, "scale": scale, "recon": recon}

    def invoke(self, values: dict[str, Any], **override: Any) -> Any:
        """One call; for a model that stores its loss (``self.loss = ...`` in forward), that."""
        if not self.stored:
            return super().invoke(values, **override)
        before = getattr(self.owner, self.stored, None)
        super().invoke(values, **override)
        stored = _Stored(getattr(self.owner, self.stored))
        setattr(self.owner, self.stored, before)  # an output, not state: each call starts the same
        return stored

    def __call__(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, **override: Any) -> list[float]:
        values = super().__call__(r, x, mu, s, **override)
        if self.stored:
            self.read_as = f"the attribute self.{self.stored} it sets"
        return values

    def tensors(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor) -> dict[str, Tensor]:
        B = r.shape[0]
        recon = r.reshape(B, *self.taps.recon_shape)
        if self.taps.draws:  # S draws of the decoder, all at the probe's reconstruction
            recon = recon.unsqueeze(0).expand(self.taps.draws, *recon.shape)
        return {
            "recon": recon,
            "data": x.reshape(B, *self.shape),
            "mu": mu,
            "scale": s,
        }

    def place(self, values: dict[str, Any]) -> tuple[list[Any], dict[str, object], dict[Slot, Any]]:
        """The batch for the method; the posterior and decoder outputs go to the hooks."""
        mu, s = values["mu"], values["scale"]
        self.replacements.current = {
            "mu": mu,
            "scale": s,
            "head": torch.cat([mu, s], dim=-1),
            "recon": values["recon"],
        }
        kwargs = dict(self.extra)
        kwargs[self.batch_param] = self.batch(values["data"])
        return [], kwargs, {}


def _batch_parameter(obj: LossObject, extra: dict[str, object]) -> tuple[str, dict[str, object]]:
    """The method's parameter for the batch (its first required one), and ``extra`` with its
    other required ones set to 0 (``batch_idx``, ``optimizer_idx``...)."""
    target = obj.call.forward if isinstance(obj.call, nn.Module) else obj.call
    params = [
        p
        for p in inspect.signature(target).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)
        and p.name not in extra
    ]
    if not params:
        raise ModelError(f"{obj.name} takes no argument to pass a batch to")
    return params[0].name, {**extra, **{p.name: 0 for p in params[1:]}}


def model_callers(
    obj: LossObject,
    model: nn.Module,
    extra: dict[str, object],
    *,
    B: int,
    input_shape: tuple[int, ...] | None,
    names: dict[str, str | None],
    guard: StateGuard,
    timings: list[float],
    watch: CallWatch | None,
    backend: Backend | None = None,
) -> tuple[list[Caller], Taps, tuple[int, ...]]:
    """Callers for a model's loss method (one per way to pass the batch and kind of data), the
    taps used, and the sample shape.

    Raises:
        ModelError: no shape, batch form or taps work; the message says what was tried.
    """
    keras = is_keras(model)
    layout = "H,W,C" if keras else "C,H,W"  # Keras takes images channels-last
    if not keras:  # Keras computes in its layers' float32 (the backend's resolution)
        model.double()
    fn = obj.function or obj.call
    batch_param, extra = _batch_parameter(obj, extra)
    errors = []
    shapes = input_shapes(model, input_shape)
    if not shapes:
        raise ModelError(f"cannot tell the input shape of {type(model).__name__}: try --input-shape {layout}")
    for shape in shapes:
        D = math.prod(shape)
        for build in _batch_builders(fn, batch_param):
            for binary in (False, True):  # binary data for models that refuse grey levels
                x = torch.rand(B, *shape, dtype=torch.float64)
                x = (x > 0.5).double() if binary else x
                guard.restore()

                def run(build: Callable[[Tensor], Any] = build, x: Tensor = x) -> Any:
                    if watch is not None:
                        watch.started()
                    start = time.perf_counter()
                    try:
                        return obj.call(**{**extra, batch_param: build(x)})
                    finally:
                        if watch is not None:
                            watch.finished(time.perf_counter() - start)

                try:
                    taps = find_taps(model, run, B, D, names)
                except ModelError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the model does not take this shape or form
                    errors.append(f"shape {shape}: {type(exc).__name__}: {str(exc)[:160]}")
                    continue
                kinds = (True,) if binary else (False, True)
                replacements = _Replacements(model, taps)
                callers: list[Caller] = [
                    ModelCaller(
                        obj,
                        taps,
                        replacements,
                        build,
                        batch_param,
                        extra,
                        shape,
                        b,
                        guard,
                        timings,
                        watch,
                        backend,
                    )
                    for b in kinds
                ]
                return callers, taps, shape
    raise ModelError(
        "the model could not be run on a batch of any shape tried: "
        + "; ".join(errors[-3:])
        + f". Try --input-shape {layout}"
    )


def iterate(callers: list[Caller]) -> Iterator[Caller]:
    """The callers in order (the shape of :func:`vaeloss.check.probe.search`'s input)."""
    yield from callers
