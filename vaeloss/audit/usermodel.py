"""``--model FILE:Class``: load a user's VAE class as it is written, build it, and find out how
to call it and what its decoder emits.

The file is loaded as ``vaeloss check`` loads a loss file (:mod:`vaeloss.usercode`): as a
member of its package when it is in one (relative imports work), its folder first on
``sys.path`` (sibling imports work), training loops and ``__main__`` blocks not run, nothing
written. The class is built with ``--init NAME=VALUE`` arguments (literals, or expressions in
the file's namespace); its interface and decoder output are found by probing one instance
(:func:`~vaeloss.engine.interface.find_interface`,
:func:`~vaeloss.engine.decoder_output.detect_decoder_output`), in ``eval()`` mode.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vaeloss.engine.build import UserModel
from vaeloss.engine.decoder_output import (
    DecoderKind,
    DecoderSemantics,
    detect_decoder_output,
    in_unit_interval,
)
from vaeloss.engine.interface import ModelInterface, decode_with, find_interface, parse_model_api
from vaeloss.errors import InvalidArgumentError
from vaeloss.usercode.classes import user_class
from vaeloss.usercode.construct import BuildError, build, evaluate_value

__all__ = ["load_user_model"]


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
    # the class is loaded: the model source keeps it for this process
    return UserModel(spec, tuple(init), iface, semantics, stacking, {"cls": cls, "kwargs": kwargs})


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
