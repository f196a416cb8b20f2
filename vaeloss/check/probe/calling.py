"""Calling the user's loss: the probe's tensors placed into its signature by a
:class:`~vaeloss.check.forms.CallForm`, the framework's random numbers seeded, the loss
object's state restored, each call timed (and reported, so that ``--timeout`` counts the
user's code only), and what it returns read as a vector of numbers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from vaeloss.check.forms import CallForm, Slot
from vaeloss.check.objects import LossObject, StateGuard
from vaeloss.check.probe.backend import Backend, Invocation, TorchBackend
from vaeloss.check.probe.inputs import SEED, generator
from vaeloss.check.probe.outputs import output_kind, read_output
from vaeloss.objective.kl import LatentParameterisation, to_logvar

__all__ = ["CallWatch", "Caller", "bound"]

_UNSET = object()


def _namespace(obj: LossObject) -> dict[str, Any]:
    """The module-level names the loss reads (its function's globals)."""
    return getattr(obj.function or obj.call, "__globals__", {})


@contextmanager
def bound(obj: LossObject, bindings: dict[Slot, Any]) -> Iterator[None]:
    """The names outside the loss's parameters bound to the probe's arrays for one call, and
    put back as they were after it: module-level names in the function's globals, attributes
    on its object."""
    saved: list[tuple[Slot, Any]] = []
    namespace = _namespace(obj)
    try:
        for slot, value in bindings.items():
            if slot.kind == "global":
                saved.append((slot, namespace.get(slot.param, _UNSET)))
                namespace[slot.param] = value
            else:
                saved.append((slot, getattr(obj.instance, slot.param, _UNSET)))
                setattr(obj.instance, slot.param, value)
        yield
    finally:
        for slot, old in reversed(saved):
            if slot.kind == "global":
                if old is _UNSET:
                    namespace.pop(slot.param, None)
                else:
                    namespace[slot.param] = old
            elif old is _UNSET:
                delattr(obj.instance, slot.param)
            else:
                setattr(obj.instance, slot.param, old)


class CallWatch(Protocol):
    """Told when each call of the user's code starts and how long it took (the worker reports
    both, so that ``--timeout`` counts the user's code and not the probe's own work)."""

    def started(self) -> None: ...

    def finished(self, seconds: float) -> None: ...


class Caller:
    """Calls the loss with the probe's tensors placed by a :class:`CallForm`, and reads what it
    returns as a vector of numbers (through the framework's :class:`Backend`)."""

    def __init__(
        self,
        obj: LossObject,
        form: CallForm,
        extra: dict[str, object],
        shape: tuple[int, ...],
        binary: bool,
        guard: StateGuard,
        timings: list[float],
        watch: CallWatch | None = None,
        backend: Backend | None = None,
        z_from: LatentParameterisation = "logvar",
        recon_flat: bool = False,
    ) -> None:
        self.obj, self.form, self.extra, self.shape = obj, form, extra, shape
        self.recon_flat = recon_flat
        """The reconstruction passed flat ``[B, D]`` beside image-shaped data (a decoder of
        ``Linear`` layers, and the batch as the loader gives it: ``x.view(-1, 784)`` in the loss)."""
        self.z_from: LatentParameterisation = z_from
        """How the posterior scale is read to draw the sample ``z`` the loss takes (if any)."""
        self.binary, self.guard, self.timings, self.watch = binary, guard, timings, watch
        self.backend: Backend = backend or TorchBackend()
        self.output: Literal["scalar", "per_sample"] = "scalar"
        self.read_as = ""
        self.positions: list[int] = []
        self.seed = SEED

    def describe(self) -> dict[str, str]:
        """Role -> where the probe puts it, for the report."""
        return self.form.describe()

    def with_shape(self, shape: tuple[int, ...]) -> Caller:
        """The same caller for samples of another shape."""
        return Caller(
            self.obj,
            self.form,
            self.extra,
            shape,
            self.binary,
            self.guard,
            self.timings,
            self.watch,
            self.backend,
            self.z_from,
            self.recon_flat,
        )

    def tensors(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor) -> dict[str, Tensor]:
        """The probe's tensors by role, shaped as the loss takes them; for a loss that takes a
        sample ``z`` of the posterior, its ``noise`` ``z - mu``: ``std * eps`` with ``eps``
        standard normal from the call's seed (a new sample at each seed, the same at each input:
        common random numbers), the scale read as :attr:`z_from`."""
        B = r.shape[0]
        recon = r.reshape(B, -1) if self.recon_flat else r.reshape(B, *self.shape)
        out = {"recon": recon, "data": x.reshape(B, *self.shape), "mu": mu, "scale": s}
        if self.form.takes_z:
            eps = torch.randn(mu.shape, generator=generator(self.seed), dtype=mu.dtype)
            out["noise"] = torch.exp(0.5 * to_logvar(s, parameterisation=self.z_from)) * eps
        return out

    def place(self, values: dict[str, Any]) -> tuple[list[Any], dict[str, object], dict[Slot, Any]]:
        """Positional and keyword arguments of the call, from the framework's arrays by role,
        and the names outside the parameters to bind for it (module-level names, ``self``'s
        attributes)."""
        b = self.backend
        if self.form.takes_z:  # a sample of the posterior, moving with its mean
            values = {**values, "z": values["mu"] + values["noise"]}
        kwargs: dict[str, object] = dict(self.extra)
        positional: dict[int, Any] = {}
        bindings: dict[Slot, Any] = {}
        for slot in self.form.slots:
            if slot.kind in ("global", "attribute"):
                bindings[slot] = values[slot.roles[0]]
                continue
            if slot.kind == "tensor":
                value: Any = values[slot.roles[0]]
            elif slot.kind == "pack":
                value = tuple(values[role] for role in slot.roles)
            elif slot.kind == "posterior":
                value = b.normal(values["mu"], values["scale"])
            elif slot.kind == "prior":
                value = b.normal(0 * values["mu"], 0 * values["scale"] + 1)
            else:
                value = b.bernoulli(values["recon"])
            if slot.param.startswith("*"):
                for i, role in enumerate(slot.roles):
                    positional[int(slot.param[1:]) + i] = values[role]
            else:
                kwargs[slot.param] = value
        return [positional[i] for i in sorted(positional)], kwargs, bindings

    def invoke(self, values: dict[str, Any], **override: Any) -> Any:
        """One call of the loss with these arrays, seeded, its object's state restored, timed."""
        args, kwargs, bindings = self.place(values)
        kwargs.update(override)
        self.guard.restore()
        self.backend.seed(self.seed)
        if self.watch is not None:
            self.watch.started()
        start = time.perf_counter()
        try:
            namespace = None if self.obj.instance is not None else _namespace(self.obj)
            return self.backend.call(
                Invocation(self._bound_call, args, kwargs, bindings, id(self.obj), namespace)
            )
        finally:
            took = time.perf_counter() - start
            self.timings.append(took)
            if self.watch is not None:
                self.watch.finished(took)

    def _bound_call(self, args: list[Any], kwargs: dict[str, object], bindings: dict[Slot, Any]) -> Any:
        with bound(self.obj, bindings):
            return self.obj.call(*args, **kwargs)

    def raw(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, **override: Any) -> Any:
        """What the loss returns at the probe's tensors (its own objects)."""
        arrays = {role: self.backend.array(t) for role, t in self.tensors(r, x, mu, s).items()}
        return self.invoke(arrays, **override)

    def __call__(self, r: Tensor, x: Tensor, mu: Tensor, s: Tensor, **override: Any) -> list[float]:
        with self.backend.no_grad():
            out = self.raw(r, x, mu, s, **override)
        B = r.shape[0]
        values, self.read_as, self.positions = read_output(out, B, self.backend)
        self.output = output_kind(out, B, self.backend)
        return values
