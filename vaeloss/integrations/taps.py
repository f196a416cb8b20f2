"""Where a user's model gives its posterior: the submodules whose outputs are the mean and the
scale, named or found by the rule check uses (:func:`vaeloss.check.model_probe.posterior_names`),
and the scale turned into a log-variance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from vaeloss.check.model_probe import posterior_names
from vaeloss.errors import InvalidArgumentError

__all__ = ["PosteriorTaps", "ScaleKind", "find_posterior", "to_logvar"]

ScaleKind = Literal["logvar", "log_std", "std", "var"]


def to_logvar(scale: Tensor, kind: ScaleKind) -> Tensor:
    """A posterior scale of ``kind`` as a log-variance (same shape).

    >>> to_logvar(torch.tensor([1.0]), "std"), to_logvar(torch.tensor([0.5]), "log_std")
    (tensor([0.]), tensor([1.]))
    """
    if kind == "log_std":
        return 2 * scale
    if kind == "std":
        return 2 * torch.log(scale)
    if kind == "var":
        return torch.log(scale)
    return scale


def _kind_of(name: str) -> ScaleKind:
    last = name.rsplit(".", 1)[-1].lower().replace("_", "")
    if "logstd" in last or "logsigma" in last:
        return "log_std"
    if "std" in last or "sigma" in last:
        return "std"
    if "var" in last and "log" not in last and "lv" not in last:
        return "var"
    return "logvar"


@dataclass(frozen=True)
class PosteriorTaps:
    """The posterior's submodules (their names in ``named_modules``) and the scale's kind."""

    mu: str
    scale: str
    kind: ScaleKind


def find_posterior(
    model: nn.Module, mu: str | None = None, scale: str | None = None, kind: ScaleKind | None = None
) -> PosteriorTaps:
    """The posterior's submodules of ``model``: those named, else the one pair the names say.

    Raises:
        InvalidArgumentError: a named submodule does not exist, or the names say none or several.
    """
    names = [n for n, _ in model.named_modules() if n]
    for label, given in (("mu", mu), ("logvar", scale)):
        if given is not None and given not in names:
            raise InvalidArgumentError(
                f"Expected a submodule of {type(model).__name__} but got {label}={given!r}. "
                f"Try one of: {', '.join(names[:12])}."
            )
    mus, scales = posterior_names(names)
    mu = mu or (mus[-1] if len(set(mus)) == 1 or (mus and scale) else None)
    scale = scale or (scales[-1] if len(set(scales)) == 1 or (scales and mu) else None)
    if mu is None or scale is None:
        raise InvalidArgumentError(
            f"Expected one submodule of {type(model).__name__} named like the posterior mean and one "
            f"like its scale but got mu={mus or 'none'}, logvar={scales or 'none'}. Try "
            f"CollapseCallback(mu='NAME', logvar='NAME'), or encode=a function returning (mu, logvar)."
        )
    return PosteriorTaps(mu, scale, kind or _kind_of(scale))


Encode = Callable[[nn.Module, object], tuple[Tensor, Tensor]]
"""``encode(module, batch) -> (mu, logvar)``: a user's own way to the posterior of a batch."""
