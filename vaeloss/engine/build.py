"""Where a sweep's models come from (:class:`ModelSource`): a built-in kind ("mlp", "linear",
"conv") or a user's class, each a small picklable value that builds S copies wherever it runs
(this process, or another one: a user's class is loaded there again by the same rules).

>>> m, how = build_model("mlp", data_dim=64, shape=(64,), hidden=(32,), latent_dim=4, n_models=3)
>>> m.encode(torch.rand(5, 64))[0].shape, how.kind
(torch.Size([3, 5, 4]), 'batched')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import torch
from torch import nn

from vaeloss.engine.decoder_output import DecoderSemantics
from vaeloss.engine.interface import ModelAPI, ModelInterface
from vaeloss.engine.models import BatchedLinearVAE, BatchedMLPVAE, BatchedVAE, ConvVAE, DataScaling
from vaeloss.engine.stacks import StackChoice, stack_models
from vaeloss.errors import InvalidArgumentError

__all__ = [
    "BUILT_IN",
    "BuiltInKind",
    "BuiltInModel",
    "ModelSource",
    "UserModel",
    "build_model",
    "conv_interface",
]

BUILT_IN = ("mlp", "linear", "conv")
BuiltInKind = Literal["mlp", "linear", "conv"]


class ModelSource(Protocol):
    """What builds a sweep's models."""

    @property
    def name(self) -> str:
        """How it was named (``mlp``, ``vae.py:VAE``)."""
        ...

    @property
    def user(self) -> bool:
        """Whether it is the user's own class."""
        ...

    @property
    def latent_dim(self) -> int: ...

    @property
    def semantics(self) -> DecoderSemantics | None:
        """What a user's decoder emits, as found (None: a built-in decoder, known)."""
        ...

    @property
    def interface(self) -> ModelInterface | None:
        """How a user's model is called, as found (None: a built-in model)."""
        ...

    def build(
        self, n_models: int, seeds: Sequence[int] | None, sample: torch.Tensor
    ) -> tuple[BatchedVAE, StackChoice]:
        """S models (copy s built from ``seeds[s]``), and how their copies run. ``sample`` (a
        few data rows [N, D]) lets a module-based model check that ``vmap`` runs it."""
        ...


def conv_interface(shape: Sequence[int], latent_dim: int) -> ModelInterface:
    """The interface of the built-in :class:`ConvVAE`."""
    api = ModelAPI("encode", "sequence", 0, 1, "logvar", ("mu", "logvar"))
    return ModelInterface(api, tuple(shape), latent_dim)


@dataclass(frozen=True)
class BuiltInModel:
    """A built-in kind with its sizes and the data scaling its layers see."""

    kind: BuiltInKind
    data_dim: int
    shape: tuple[int, ...]
    hidden: tuple[int, ...]
    latent_dim: int
    scaling: DataScaling | None = None

    @property
    def name(self) -> str:
        return self.kind

    @property
    def user(self) -> bool:
        return False

    @property
    def semantics(self) -> DecoderSemantics | None:
        return None

    @property
    def interface(self) -> ModelInterface | None:
        return None

    def build(
        self, n_models: int, seeds: Sequence[int] | None, sample: torch.Tensor
    ) -> tuple[BatchedVAE, StackChoice]:
        if self.kind == "mlp":
            model: BatchedVAE = BatchedMLPVAE(
                self.data_dim,
                self.hidden,
                self.latent_dim,
                n_models=n_models,
                seeds=seeds,
                scaling=self.scaling,
            )
            return model, StackChoice("batched")
        if self.kind == "linear":
            model = BatchedLinearVAE(
                self.data_dim, self.latent_dim, n_models=n_models, seeds=seeds, scaling=self.scaling
            )
            return model, StackChoice("batched")
        shape, k, scaling = self.shape, self.latent_dim, self.scaling
        if len(shape) != 3:
            raise InvalidArgumentError(
                f"Expected image data (C, H, W) for --model conv but got shape={tuple(shape)}. "
                f"Try --model mlp."
            )
        ConvVAE(shape, k)  # its own checks, before any stacking

        def conv() -> nn.Module:
            return ConvVAE(shape, k, scaling=scaling)

        return stack_models(
            conv,
            conv_interface(shape, k),
            n_models=n_models,
            seeds=seeds,
            data_dim=self.data_dim,
            sample=sample,
        )


@dataclass(frozen=True)
class UserModel:
    """A user's VAE class, ready to build S copies of.

    Attributes:
        spec: how it was named (``vae.py:VAE``): where it is loaded from, in any process.
        init: its constructor arguments as given (``--init`` texts: literals, else expressions
            in the model's file).
        iface: how to call it (found by probing one instance).
        semantics: what its decoder emits (found from its last operation and range).
        stacking: "auto" (vmap, else the loop) or "loop".

    The class itself is loaded once per process and not pickled: a copy of the plan in another
    process loads it again from ``spec``.
    """

    spec: str
    init: tuple[tuple[str, str], ...]
    iface: ModelInterface
    semantics: DecoderSemantics
    stacking: str = "auto"
    _loaded: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec

    @property
    def user(self) -> bool:
        return True

    @property
    def latent_dim(self) -> int:
        return self.iface.latent_dim

    @property
    def interface(self) -> ModelInterface | None:
        return self.iface

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaded"] = {}
        return state

    def loaded(self) -> tuple[type[nn.Module], dict[str, Any]]:
        """The class and its constructor arguments' values (loaded on first use here)."""
        if "cls" not in self._loaded:
            from vaeloss.usercode.classes import user_class
            from vaeloss.usercode.construct import evaluate_value

            cls, namespace = user_class(self.spec)
            self._loaded["cls"] = cls
            self._loaded["kwargs"] = {k: evaluate_value(v, namespace) for k, v in self.init}
        return self._loaded["cls"], self._loaded["kwargs"]

    def build(
        self, n_models: int, seeds: Sequence[int] | None, sample: torch.Tensor
    ) -> tuple[BatchedVAE, StackChoice]:
        cls, kwargs = self.loaded()
        return stack_models(
            lambda: cls(**kwargs),
            self.iface,
            n_models=n_models,
            seeds=seeds,
            data_dim=sample.shape[1],
            sample=sample,
            force="loop" if self.stacking == "loop" else None,
        )


def build_model(
    kind: str,
    *,
    data_dim: int,
    shape: Sequence[int],
    hidden: Sequence[int],
    latent_dim: int,
    n_models: int,
    seeds: Sequence[int] | None = None,
    scaling: DataScaling | None = None,
    sample: torch.Tensor | None = None,
) -> tuple[BatchedVAE, StackChoice]:
    """S models of a built-in kind, and how their copies run (batched or one after the other).

    ``sample`` (a few data rows [N, D]) lets a module-based model check that ``vmap`` runs it
    (default: random rows).
    """
    if kind not in BUILT_IN:
        raise InvalidArgumentError(
            f"Expected --model mlp|conv|linear|FILE:Class but got model={kind!r}. Try --model my_vae.py:VAE."
        )
    x = sample if sample is not None else torch.rand(4, data_dim, generator=torch.Generator().manual_seed(0))
    source = BuiltInModel(cast(BuiltInKind, kind), data_dim, tuple(shape), tuple(hidden), latent_dim, scaling)
    return source.build(n_models, seeds, x)
