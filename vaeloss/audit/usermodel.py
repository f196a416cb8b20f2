"""``--model FILE:Class``: load a user's VAE class as it is written, build it, and find out how
to call it and what its decoder emits.

The file is loaded as ``vaeloss check`` loads a loss file (:mod:`vaeloss.check.loader`): as a
member of its package when it is in one (relative imports work), its folder first on
``sys.path`` (sibling imports work), training loops and ``__main__`` blocks not run, nothing
written. The class is built with ``--init NAME=VALUE`` arguments (literals, or expressions in
the file's namespace); its interface and decoder output are found by probing one instance
(:func:`~vaeloss.engine.interface.find_interface`,
:func:`~vaeloss.engine.decoder_output.detect_decoder_output`), in ``eval()`` mode.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vaeloss.construct import BuildError, build, evaluate_value
from vaeloss.engine.build import UserModel
from vaeloss.engine.decoder_output import (
    DecoderKind,
    DecoderSemantics,
    detect_decoder_output,
    in_unit_interval,
)
from vaeloss.engine.interface import ModelInterface, decode_with, find_interface, parse_model_api
from vaeloss.errors import InvalidArgumentError, LossCheckError

__all__ = ["load_user_model", "user_class"]


def user_class(spec: str) -> tuple[type[nn.Module], dict[str, Any]]:
    """The class named by ``FILE:Class`` (or ``pkg.module:Class``) and its module's namespace."""
    from vaeloss.check.loader import load_module
    from vaeloss.check.target import resolve_target

    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise InvalidArgumentError(
            f"Expected --model mlp|conv|linear|FILE:Class but got model={spec!r}. Try --model my_vae.py:VAE."
        )
    try:
        target = resolve_target(spec)
    except LossCheckError:
        raise InvalidArgumentError(
            f"Expected --model FILE:Class with an existing file but got model={spec!r}: no file "
            f"{where!r}. Try --model path/to/my_vae.py:VAE."
        ) from None
    argv = list(sys.argv)
    try:
        loaded = load_module(target.path, target.module, target.search_path)
    except Exception as exc:  # noqa: BLE001 - the user's file
        raise InvalidArgumentError(
            f"Expected {target.path.name} to load but it raised {type(exc).__name__}: {exc}."
        ) from None
    finally:
        sys.argv = argv
    namespace = vars(loaded.module)
    cls = namespace.get(name)
    if cls is None:
        why = loaded.explain_name(name) if hasattr(loaded, "explain_name") else None
        raise InvalidArgumentError(
            f"Expected a class named {name} in {target.path.name} but there is none"
            + (f" ({why})" if why else "")
            + ". Try --model FILE:Class with the name of your VAE class."
        )
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise InvalidArgumentError(
            f"Expected {name} in {target.path.name} to be an nn.Module class but it is "
            f"{type(cls).__name__}. Try --model FILE:Class with your VAE class."
        )
    return cls, namespace


def load_user_model(
    spec: str,
    *,
    init: Sequence[tuple[str, str]] = (),
    model_api: str | None = None,
    decoder_output: DecoderKind | None = None,
    x: Tensor,
    data_shape: Sequence[int],
    stacking: str = "auto",
) -> UserModel:
    """Load, build and probe a user's model on data rows ``x`` [N, D].

    Raises:
        InvalidArgumentError: the file, class, constructor or interface does not work; the
            message says what happened and what to pass.
    """
    cls, namespace = user_class(spec)
    kwargs = {k: evaluate_value(v, namespace) for k, v in init}
    name = cls.__name__
    try:
        torch.manual_seed(0)
        model = build(cls, f"{name}()", kwargs)
    except BuildError as exc:
        raise InvalidArgumentError(str(exc)) from None
    api = parse_model_api(model_api) if model_api else None
    iface = find_interface(model, x[:2], data_shape, api=api)
    semantics = _semantics(model, iface, decoder_output)
    return UserModel(cls, spec, iface, semantics, kwargs, stacking)


def _semantics(model: nn.Module, iface: ModelInterface, override: DecoderKind | None) -> DecoderSemantics:
    was = model.training
    model.eval()
    try:
        detected = detect_decoder_output(lambda z: decode_with(model, z, iface), iface.latent_dim)
    finally:
        model.train(was)
    if override is None:
        return detected
    if override == "probabilities":
        if not in_unit_interval(detected.seen_low, detected.seen_high):
            raise InvalidArgumentError(
                f"Expected decoder outputs in [0, 1] for --decoder-output probs but decode(z) gave "
                f"values in [{detected.seen_low:.3g}, {detected.seen_high:.3g}] on prior samples "
                f"({detected.how}). Try --decoder-output logits, or leave it out to have it detected."
            )
        return DecoderSemantics("probabilities", 0.0, 1.0, None, "--decoder-output probs", stated=True)
    return DecoderSemantics(
        override, -float("inf"), float("inf"), None, f"--decoder-output {override}", stated=True
    )
