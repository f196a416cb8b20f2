"""S copies of an ordinary ``nn.Module`` VAE (the conv VAE, a user's class) as one batched model.

* :class:`FuncStack` stacks the copies' parameters and buffers on a first dim of size S
  (``torch.func.stack_module_state``) and calls the module once for all S with
  ``vmap(functional_call)``: one batched model, as fast as the built-in MLP sweep.
* :class:`ModuleStack` calls the copies one after the other: the fallback for modules ``vmap``
  cannot run (data-dependent Python control flow, ``.item()``, in-place updates of a buffer
  shared by the copies...). :func:`stack_models` tries the first and says why it fell back.

Both call the module through its :class:`~vaeloss.engine.interface.ModelInterface`
(image-shaped inputs, tuple/dict/Normal posteriors, ``decode`` or a ``decoder`` submodule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from vaeloss.engine.interface import ModelInterface, decode_with, encode_with
from vaeloss.engine.models import BatchedVAE, model_seeds

__all__ = ["FuncStack", "ModuleStack", "StackChoice", "stack_models"]


def _copies(factory: Callable[[], nn.Module], n_models: int, seeds: Sequence[int] | None) -> list[nn.Module]:
    """S modules, copy s built after ``torch.manual_seed(seeds[s])`` (the global RNG is restored)."""
    state = torch.random.get_rng_state()
    try:
        mods = []
        for s in model_seeds(n_models, seeds):
            torch.manual_seed(s)
            mods.append(factory())
        return mods
    finally:
        torch.random.set_rng_state(state)


class _Method(nn.Module):
    """Calls ``fn(module, x)`` as its forward, so that ``functional_call`` can run any method."""

    def __init__(self, module: nn.Module, fn: Callable[[nn.Module, Tensor], Any]) -> None:
        super().__init__()
        self.m = module
        self.fn = fn

    def forward(self, x: Tensor) -> Any:
        return self.fn(self.m, x)


def _mangle(name: str) -> str:
    return name.replace(".", "__")


class FuncStack(BatchedVAE):
    """S copies of a module, their parameters and buffers stacked on dim 0, run with ``vmap``.

    >>> from vaeloss.engine.models import ConvVAE
    >>> from vaeloss.engine.interface import ModelAPI
    >>> api = ModelAPI("encode", "sequence", 0, 1, "logvar", ("mu", "logvar"))
    >>> iface = ModelInterface(api, (1, 8, 8), 2)
    >>> m = FuncStack(lambda: ConvVAE((1, 8, 8), 2), iface, n_models=3, data_dim=64)
    >>> [t.shape for t in m.encode(torch.rand(5, 64))], m.decode(torch.zeros(3, 5, 2)).shape
    ([torch.Size([3, 5, 2]), torch.Size([3, 5, 2])], torch.Size([3, 5, 64]))
    """

    def __init__(
        self,
        factory: Callable[[], nn.Module],
        iface: ModelInterface,
        *,
        n_models: int = 1,
        seeds: Sequence[int] | None = None,
        data_dim: int,
    ) -> None:
        super().__init__()
        mods = _copies(factory, n_models, seeds)
        self.n_models, self.data_dim, self.latent_dim = n_models, data_dim, iface.latent_dim
        self.iface = iface
        params, buffers = stack_module_state(mods)
        self._names = (list(params), list(buffers))
        for name, t in params.items():
            self.register_parameter(_mangle(name), nn.Parameter(t.detach()))
        for name, t in buffers.items():
            self.register_buffer(_mangle(name), t)
        template = mods[0]
        # not submodules: their own tensors are replaced by the stacked ones at every call
        self._calls = (
            _Method(template, lambda m, x: encode_with(m, x, iface)),
            _Method(template, lambda m, z: decode_with(m, z, iface)),
        )

    def _apply(self, fn: Any, recurse: bool = True) -> FuncStack:
        super()._apply(fn, recurse)
        # the template follows too: functional_call replaces its parameters and buffers, but a
        # tensor the model reads directly from it then lives on the same device
        self._calls[0]._apply(fn)
        return self

    def train(self, mode: bool = True) -> FuncStack:
        super().train(mode)
        self._calls[0].train(mode)
        return self

    def _run(self, which: int, x: Tensor, batched: bool) -> Any:
        params = {f"m.{n}": getattr(self, _mangle(n)) for n in self._names[0]}
        buffers = {f"m.{n}": getattr(self, _mangle(n)) for n in self._names[1]}
        call = self._calls[which]

        def one(p: dict[str, Tensor], b: dict[str, Tensor], xi: Tensor) -> Any:
            return functional_call(call, (p, b), (xi,), strict=True)

        in_dims = (0, 0, 0 if batched else None)
        return vmap(one, in_dims=in_dims, randomness="different")(params, buffers, x)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self._run(0, x, x.dim() == 3)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        lead = z.shape[1:-1]
        out = self._run(1, z.reshape(z.shape[0], -1, z.shape[-1]), True)
        return out.reshape(z.shape[0], *lead, -1)

    def _one(self, which: int, s: int, x: Tensor) -> Any:
        """Copy s alone (no vmap): its slice of every stacked tensor."""
        params = {f"m.{n}": getattr(self, _mangle(n))[s] for n in self._names[0]}
        buffers = {f"m.{n}": getattr(self, _mangle(n))[s] for n in self._names[1]}
        return functional_call(self._calls[which], (params, buffers), (x,), strict=True)

    def encode_one(self, s: int, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self._one(0, s, x)
        return mu, logvar

    def decode_one(self, s: int, z: Tensor) -> Tensor:
        return self._one(1, s, z).reshape(z.shape[0], -1)

    def model_tensors(self) -> list[tuple[Tensor, int | None]]:
        return [(t, None) for t in [*self.parameters(), *self.buffers()]]


class ModuleStack(BatchedVAE):
    """S copies of a module called one after the other (the fallback of :class:`FuncStack`)."""

    def __init__(
        self,
        factory: Callable[[], nn.Module],
        iface: ModelInterface,
        *,
        n_models: int = 1,
        seeds: Sequence[int] | None = None,
        data_dim: int,
    ) -> None:
        super().__init__()
        self.models = nn.ModuleList(_copies(factory, n_models, seeds))
        self.n_models, self.data_dim, self.latent_dim = n_models, data_dim, iface.latent_dim
        self.iface = iface

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        outs = [encode_with(m, x if x.dim() == 2 else x[i], self.iface) for i, m in enumerate(self.models)]
        return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])

    def decode(self, z: Tensor) -> Tensor:
        lead = z.shape[1:-1]
        outs = [decode_with(m, z[i].reshape(-1, z.shape[-1]), self.iface) for i, m in enumerate(self.models)]
        return torch.stack([o.reshape(*lead, -1) for o in outs])

    def encode_one(self, s: int, x: Tensor) -> tuple[Tensor, Tensor]:
        return encode_with(self.models[s], x, self.iface)

    def decode_one(self, s: int, z: Tensor) -> Tensor:
        return decode_with(self.models[s], z, self.iface).reshape(z.shape[0], -1)

    def model_tensors(self) -> list[tuple[Tensor, int | None]]:
        return [(t, s) for s, m in enumerate(self.models) for t in [*m.parameters(), *m.buffers()]]


@dataclass(frozen=True)
class StackChoice:
    """How the sweep's copies run: "batched" (``vmap``) or "loop", and why it is a loop."""

    kind: str
    reason: str | None = None

    def describe(self) -> str:
        if self.kind == "batched":
            return "batched (torch.func vmap over the sweep's copies)"
        return f"one copy after the other (vmap cannot run this model: {self.reason})"


def stack_models(
    factory: Callable[[], nn.Module],
    iface: ModelInterface,
    *,
    n_models: int,
    seeds: Sequence[int] | None,
    data_dim: int,
    sample: Tensor,
    force: str | None = None,
) -> tuple[BatchedVAE, StackChoice]:
    """S copies as a :class:`FuncStack` when ``vmap`` runs the module and agrees with calling
    it directly (checked on ``sample`` rows, in training and in eval mode), else a
    :class:`ModuleStack` and the reason."""
    if force != "loop":
        try:
            _try_vmap(factory, iface, data_dim, sample)
        except Exception as exc:  # noqa: BLE001 - any failure of vmap: fall back, say why
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
            return (
                ModuleStack(factory, iface, n_models=n_models, seeds=seeds, data_dim=data_dim),
                StackChoice("loop", reason[:300]),
            )
        return FuncStack(factory, iface, n_models=n_models, seeds=seeds, data_dim=data_dim), StackChoice(
            "batched"
        )
    return ModuleStack(factory, iface, n_models=n_models, seeds=seeds, data_dim=data_dim), StackChoice(
        "loop", "asked for"
    )


def _try_vmap(factory: Callable[[], nn.Module], iface: ModelInterface, data_dim: int, x: Tensor) -> None:
    """Raise unless two vmapped copies agree with the loop in eval mode and train a step
    (random layers such as dropout draw differently, so training is only run, not compared)."""
    batched = FuncStack(factory, iface, n_models=2, seeds=[0, 1], data_dim=data_dim)
    loop = ModuleStack(factory, iface, n_models=2, seeds=[0, 1], data_dim=data_dim)
    with torch.no_grad():
        batched.eval()
        loop.eval()
        for a, b in zip(batched.encode(x), loop.encode(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        z = torch.zeros(2, x.shape[0], iface.latent_dim)
        torch.testing.assert_close(batched.decode(z), loop.decode(z), rtol=1e-4, atol=1e-5)
    batched.train()
    mu, logvar = batched.encode(x)
    out = batched.decode(mu + logvar.mul(0.5).exp())
    (out.square().mean() + mu.square().mean()).backward()
