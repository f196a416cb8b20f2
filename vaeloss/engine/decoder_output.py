"""What a user's decoder emits: logits, probabilities, or a mean in a range.

Read from the decoder's last operation (the torch function that produced its output, seen
through reshapes and views) and from the range of its outputs on prior samples:

==================================  ===============================  =============
last operation                      emits                            range
==================================  ===============================  =============
sigmoid, hardsigmoid, softmax       probabilities                    [0, 1]
tanh, hardtanh                      a mean                           [-1, 1]
relu, softplus, exp                 a mean                           [0, inf)
anything else, outputs in [0, 1]    probabilities (by range)         [0, 1]
anything else                       logits (Bernoulli) or a mean     unbounded
==================================  ===============================  =============

:func:`decoder_output_for` then matches this with the likelihood of the loss audited: the
Bernoulli family reads probabilities or logits; a Gaussian or Laplace reads a mean, whose range
must hold the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from vaeloss.errors import DataError, InvalidArgumentError
from vaeloss.objective.likelihoods import ALLOWED_OUTPUTS, DecoderOutput, Likelihood

__all__ = [
    "DecoderKind",
    "DecoderSemantics",
    "decoder_output_for",
    "detect_decoder_output",
    "in_unit_interval",
    "last_operation",
]

DecoderKind = Literal["logits", "probabilities", "mean"]
"""What a decoder emits, as ``--decoder-output`` names it (``probs`` for probabilities)."""

_SQUASH: dict[str, tuple[DecoderKind, float, float]] = {
    "sigmoid": ("probabilities", 0.0, 1.0),
    "hardsigmoid": ("probabilities", 0.0, 1.0),
    "softmax": ("probabilities", 0.0, 1.0),
    "tanh": ("mean", -1.0, 1.0),
    "hardtanh": ("mean", -1.0, 1.0),
    "relu": ("mean", 0.0, math.inf),
    "softplus": ("mean", 0.0, math.inf),
    "exp": ("mean", 0.0, math.inf),
}
# operations that move values around without changing them
_PASS_THROUGH = {
    "view", "reshape", "flatten", "unflatten", "contiguous", "clone", "squeeze", "unsqueeze",
    "permute", "transpose", "__getitem__", "narrow", "float", "double", "to", "type_as",
    "view_as", "reshape_as", "expand", "expand_as", "detach", "cpu", "cuda", "pixel_shuffle",
    "chunk", "split", "unbind", "select", "slice",
}  # fmt: skip


@dataclass(frozen=True)
class DecoderSemantics:
    """What a decoder emits and how that was decided.

    Attributes:
        kind: "logits", "probabilities" or "mean".
        low, high: the range of its outputs (-inf, inf for logits and unbounded means).
        last_op: the last torch operation on its output (None when none was seen).
        how: a phrase for the report ("its last operation is sigmoid").
        seen_low, seen_high: the smallest and largest output seen on the prior samples probed
            (nan when not probed).
        stated: the user said so (``--decoder-output``) rather than it being detected.
    """

    kind: DecoderKind
    low: float
    high: float
    last_op: str | None
    how: str
    seen_low: float = math.nan
    seen_high: float = math.nan
    stated: bool = False

    @property
    def squashed(self) -> bool:
        """Whether the output is bounded (a sigmoid, tanh... is part of the model)."""
        return math.isfinite(self.low) or math.isfinite(self.high)


class _Recorder(TorchFunctionMode):
    """Remembers, for every tensor made, the operation that made it and its first input."""

    def __init__(self) -> None:
        super().__init__()
        self.made: dict[int, tuple[str, Tensor | None, Tensor]] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name == "__get__":
            return out
        first = next((a for a in tree_leaves((args, kwargs or {})) if isinstance(a, Tensor)), None)
        in_place = name.endswith("_") and not name.endswith("__")
        for leaf in tree_leaves(out):
            if isinstance(leaf, Tensor) and (leaf is not first or in_place):
                # an in-place op (sigmoid_) returns its input changed: it becomes its maker; an
                # op that returns its input unchanged (contiguous, float) leaves the maker as is
                self.made[id(leaf)] = (name.rstrip("_") if in_place else name, first, leaf)
        return out


def last_operation(
    fn: Callable[..., Any],
    *args: Any,
    select: Callable[[Any], Any] | None = None,
    through: frozenset[str] = frozenset(),
) -> tuple[str | None, Any]:
    """Call ``fn(*args)``; return the last operation on its output and the output.

    The output looked at is ``select(output)`` (default: its first tensor); reshapes, views
    and the operations named in ``through`` are seen through.

    >>> last_operation(lambda z: torch.sigmoid(z * 2).view(-1), torch.zeros(2, 2))[0]
    'sigmoid'
    """
    rec = _Recorder()
    with rec:
        out = fn(*args)
    if select is not None:
        leaf = select(out)
    else:
        leaf = next((t for t in tree_leaves(out) if isinstance(t, Tensor)), None)
    op = None
    seen = 0
    while isinstance(leaf, Tensor) and id(leaf) in rec.made and seen < 64:
        op, parent, _ = rec.made[id(leaf)]
        if (op not in _PASS_THROUGH and op not in through) or parent is None:
            break
        leaf, seen = parent, seen + 1
    return op, out


def in_unit_interval(low: float, high: float) -> bool:
    """Whether outputs seen in [low, high] can be probabilities.

    >>> in_unit_interval(0.0, 1.0), in_unit_interval(-0.1, 0.5)
    (True, False)
    """
    return 0.0 <= low and high <= 1.0


@torch.no_grad()
def detect_decoder_output(
    decode: Callable[[Tensor], Tensor], latent_dim: int, *, samples: int = 256
) -> DecoderSemantics:
    """What ``decode`` (z [N, k] -> outputs [N, ...]) emits, from ``samples`` prior draws.

    >>> detect_decoder_output(lambda z: torch.tanh(z @ torch.ones(2, 3)), 2).kind
    'mean'
    """
    z = torch.randn(samples, latent_dim, generator=torch.Generator().manual_seed(0))
    op, out = last_operation(decode, z)
    leaf = next(t for t in tree_leaves(out) if isinstance(t, Tensor))
    lo, hi = float(leaf.min()), float(leaf.max())
    if op in _SQUASH:
        kind, low, high = _SQUASH[op]
        return DecoderSemantics(kind, low, high, op, f"its last operation is {op}", lo, hi)
    if in_unit_interval(lo, hi):
        return DecoderSemantics(
            "probabilities",
            0.0,
            1.0,
            op,
            f"its outputs on {samples} prior samples all lie in [0, 1] (last operation {op or 'unknown'})",
            lo,
            hi,
        )
    return DecoderSemantics(
        "logits",
        -math.inf,
        math.inf,
        op,
        f"its last operation ({op or 'unknown'}) does not bound its outputs",
        lo,
        hi,
    )


def decoder_output_for(
    semantics: DecoderSemantics,
    likelihood: Likelihood,
    *,
    data_range: tuple[float, float],
    loss_reads: DecoderOutput | None = None,
) -> DecoderOutput:
    """The ``decoder_output`` the likelihood reads this decoder's outputs as.

    An unbounded output feeds a Gaussian loss as its mean, or as logits (the mean is its
    sigmoid) when the user says so or the audited loss reads it so (``loss_reads``, e.g.
    ``mse(sigmoid(out), x)``).

    Raises:
        InvalidArgumentError: the decoder emits what the likelihood cannot read (a tanh output
            for a Bernoulli loss, a mean stated for a Bernoulli loss).
        DataError: the data lies outside the range of the decoder's mean.
    """
    kind = semantics.kind
    if likelihood in ("bernoulli", "continuous_bernoulli", "multinomial"):
        if kind == "probabilities":
            return "probabilities"
        if semantics.stated and kind == "mean":
            raise InvalidArgumentError(
                f"Expected --decoder-output logits or probs for a {likelihood} loss (its mean is a "
                f"probability) but got decoder_output='mean'. Try --decoder-output probs if the "
                f"decoder ends in a sigmoid, else --decoder-output logits."
            )
        if semantics.squashed:
            raise InvalidArgumentError(
                f"Expected a decoder that emits probabilities or logits for a {likelihood} loss, but "
                f"the model's decoder emits a mean in [{semantics.low:g}, {semantics.high:g}] "
                f"({semantics.how}). Try a squared-error loss (--convention sse_sum), or "
                f"--decoder-output logits|probs if that is not what it emits."
            )
        return "logits"
    logits = (
        kind == "logits"
        and "logits" in ALLOWED_OUTPUTS[likelihood]
        and (semantics.stated or loss_reads == "logits")
    )
    low, high = (0.0, 1.0) if logits else (semantics.low, semantics.high)
    lo, hi = data_range
    tol = 1e-6 * max(1.0, abs(lo), abs(hi))
    if lo < low - tol or hi > high + tol:
        how = f"{semantics.how}, read as logits whose sigmoid is the mean" if logits else semantics.how
        raise DataError(
            f"Expected data within the decoder's output range [{low:g}, {high:g}] "
            f"({how}) but the data spans [{lo:g}, {hi:g}]: the model cannot reconstruct it. "
            f"Try data scaled to that range (--rescale maps min..max to [0, 1]), or "
            f"--decoder-output mean if the output is not bounded."
        )
    return "logits" if logits else "mean"
