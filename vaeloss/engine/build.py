"""Build the S models of a sweep: a built-in kind ("mlp", "linear", "conv") or a user's class.

>>> m, how = build_model("mlp", data_dim=64, shape=(64,), hidden=(32,), latent_dim=4, n_models=3)
>>> m.encode(torch.rand(5, 64))[0].shape, how.kind
(torch.Size([3, 5, 4]), 'batched')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vaeloss.engine.decoder_output import DecoderSemantics
from vaeloss.engine.interface import ModelAPI, ModelInterface
from vaeloss.engine.models import BatchedLinearVAE, BatchedMLPVAE, BatchedVAE, ConvVAE, DataScaling
from vaeloss.engine.stacks import StackChoice, stack_models
from vaeloss.errors import InvalidArgumentError

__all__ = ["BUILT_IN", "UserModel", "build_model"]

BUILT_IN = ("mlp", "linear", "conv")


@dataclass(frozen=True)
class UserModel:
    """A user's VAE class, ready to build S copies of.

    Attributes:
        cls: the class; init: its constructor arguments (``--init``).
        spec: how it was named (``vae.py:VAE``).
        iface: how to call it (found by probing one instance).
        semantics: what its decoder emits (found from its last operation and range).
        stacking: "auto" (vmap, else the loop) or "loop".
    """

    cls: type[nn.Module]
    spec: str
    iface: ModelInterface
    semantics: DecoderSemantics
    init: dict[str, Any] = field(default_factory=dict)
    stacking: str = "auto"

    def factory(self) -> Callable[[], nn.Module]:
        return lambda: self.cls(**self.init)

    @property
    def latent_dim(self) -> int:
        return self.iface.latent_dim


def conv_interface(shape: Sequence[int], latent_dim: int) -> ModelInterface:
    """The interface of the built-in :class:`ConvVAE`."""
    api = ModelAPI("encode", "sequence", 0, 1, "logvar", ("mu", "logvar"))
    return ModelInterface(api, tuple(shape), latent_dim)


def build_model(
    kind: str | UserModel,
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
    """S models of a kind, and how their copies run (batched or one after the other).

    ``scaling`` is used by the built-in kinds; ``sample`` (a few data rows [N, D]) lets a
    module-based model check that ``vmap`` runs it (default: random rows).
    """
    if kind == "mlp":
        return BatchedMLPVAE(
            data_dim, hidden, latent_dim, n_models=n_models, seeds=seeds, scaling=scaling
        ), StackChoice("batched")
    if kind == "linear":
        return BatchedLinearVAE(
            data_dim, latent_dim, n_models=n_models, seeds=seeds, scaling=scaling
        ), StackChoice("batched")
    x = sample if sample is not None else torch.rand(4, data_dim, generator=torch.Generator().manual_seed(0))
    if kind == "conv":
        if len(shape) != 3:
            raise InvalidArgumentError(
                f"Expected image data (C, H, W) for --model conv but got shape={tuple(shape)}. "
                f"Try --model mlp."
            )
        ConvVAE(shape, latent_dim)  # its own checks, before any stacking

        def conv() -> nn.Module:
            return ConvVAE(shape, latent_dim, scaling=scaling)

        return stack_models(
            conv,
            conv_interface(shape, latent_dim),
            n_models=n_models,
            seeds=seeds,
            data_dim=data_dim,
            sample=x,
        )
    if isinstance(kind, UserModel):
        return stack_models(
            kind.factory(),
            kind.iface,
            n_models=n_models,
            seeds=seeds,
            data_dim=data_dim,
            sample=x,
            force="loop" if kind.stacking == "loop" else None,
        )
    raise InvalidArgumentError(
        f"Expected --model mlp|conv|linear|FILE:Class but got model={kind!r}. Try --model my_vae.py:VAE."
    )
