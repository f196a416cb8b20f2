"""The reconstruction grid a callback shows in TensorBoard: a validation batch's first inputs
and the model's reconstructions of them.

The reconstruction is found as ``check`` finds a decoder's output through a model: the output
of the module's own ``forward`` (a tensor, or one in a tuple, list or dict) shaped like its
input, or with as many values per row (a flat ``[B, D]`` output of a ``[B, 1, 28, 28]`` input);
or it is given, ``reconstruct=lambda module, batch: (x, x_hat)``. Outputs far outside [0, 1]
for data in [0, 1] are logits, and shown through a sigmoid (the figure's title says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vaeloss.check.model_probe import image_shapes

__all__ = [
    "Reconstruct",
    "ReconstructionTap",
    "displayable",
    "find_reconstruction",
    "image_layout",
    "reconstruction_figure",
]

Reconstruct = Callable[[nn.Module, Any], tuple[Tensor, Tensor]]
"""``(module, batch) -> (x, x_hat)``: the inputs and their reconstructions, any shape."""

LOGIT_MARGIN = 0.5
"""Outputs more than this outside [0, 1], for data in [0, 1], are read as logits."""


def _tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    return []


def find_reconstruction(x: Tensor, output: Any) -> Tensor | None:
    """The tensor of ``output`` shaped like ``x`` [B, ...], else the first with as many values
    per row (reshaped to ``x``'s shape); None when there is none.

    >>> x = torch.zeros(4, 1, 2, 2)
    >>> find_reconstruction(x, (torch.ones(4, 4), torch.zeros(4, 2))).shape
    torch.Size([4, 1, 2, 2])
    >>> find_reconstruction(x, torch.zeros(4, 3)) is None
    True
    """
    candidates = [t for t in _tensors(output) if t.dim() >= 1 and t.shape[0] == x.shape[0]]
    for t in candidates:
        if t.shape == x.shape:
            return t
    for t in candidates:
        if t.numel() == x.numel() and t.is_floating_point():
            return t.reshape(x.shape)
    return None


def image_layout(x: Tensor) -> tuple[Tensor, tuple[int, ...]] | None:
    """Rows of ``x`` as flat images and their shape (channels first), or None when ``x`` is not
    images: [B, C, H, W] or [B, H, W, C] (C of 1 or 3), [B, H, W], or [B, D] of a square image.

    >>> flat, shape = image_layout(torch.zeros(2, 28, 28, 1))
    >>> flat.shape, shape
    (torch.Size([2, 784]), (1, 28, 28))
    >>> image_layout(torch.zeros(2, 10)) is None
    True
    """
    if x.dim() == 4 and x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.dim() in (3, 4):
        return x.reshape(len(x), -1), tuple(x.shape[1:])
    if x.dim() == 2:
        shapes = [s for s in image_shapes(x.shape[1]) if s[0] in (1, 3)]  # channels first
        return (x, shapes[0]) if shapes else None
    return None


def displayable(x: Tensor, x_hat: Tensor) -> tuple[np.ndarray, np.ndarray, str]:
    """The inputs and reconstructions as arrays in [0, 1] (clipped), and how ``x_hat`` was
    read: ``"logits"`` (shown through a sigmoid) when the data lie in [0, 1] and the outputs
    go more than :data:`LOGIT_MARGIN` outside it, else ``"values"``.

    >>> _, shown, how = displayable(torch.tensor([[0.0, 1.0]]), torch.tensor([[-6.0, 6.0]]))
    >>> how, shown.round(3).tolist()
    ('logits', [[0.002, 0.998]])
    """
    x, x_hat = x.detach().double().cpu(), x_hat.detach().double().cpu()
    in_unit = bool(x.min() >= 0 and x.max() <= 1)
    logits = in_unit and bool(x_hat.min() < -LOGIT_MARGIN or x_hat.max() > 1 + LOGIT_MARGIN)
    shown = torch.sigmoid(x_hat) if logits else x_hat
    if not in_unit:  # show data of any range on one scale: the inputs' own
        low, high = x.min(), x.max()
        x, shown = (x - low) / (high - low + 1e-12), (shown - low) / (high - low + 1e-12)
    return x.clamp(0, 1).numpy(), shown.clamp(0, 1).numpy(), "logits" if logits else "values"


class ReconstructionTap:
    """Keeps the first ``n`` inputs and reconstructions of the first call of a module's
    ``forward`` after :meth:`arm` (a forward hook, removed by :meth:`remove`)."""

    def __init__(self, n: int = 8) -> None:
        self.n = n
        self.pair: tuple[Tensor, Tensor] | None = None
        self._hook: Any = None
        self._armed = False

    def arm(self, module: nn.Module | None) -> None:
        """Keep the next pair: of ``module``'s next call, or (None) of the next :meth:`record`."""
        self.remove()
        self.pair, self._armed = None, True
        if module is not None:
            self._hook = module.register_forward_hook(self._on_forward)

    def _on_forward(self, _m: nn.Module, args: Any, output: Any) -> None:
        if not self._armed:
            return
        self._armed = False
        x = next((a for a in args if isinstance(a, Tensor)), None)
        x_hat = None if x is None else find_reconstruction(x, output)
        if x is not None and x_hat is not None:
            self._keep(x, x_hat)

    def record(self, module: nn.Module, batch: Any, reconstruct: Reconstruct) -> None:
        """The pair from the user's ``reconstruct`` (once per arming)."""
        if self._armed:
            self._armed = False
            with torch.no_grad():
                x, x_hat = reconstruct(module, batch)
            self._keep(x, x_hat)

    def _keep(self, x: Tensor, x_hat: Tensor) -> None:
        """The first ``n`` rows of both, detached on the CPU, ``x_hat`` in ``x``'s shape."""
        x = x[: self.n].detach().cpu()
        self.pair = (x, x_hat[: self.n].detach().cpu().reshape(x.shape))

    def remove(self) -> None:
        if self._hook is not None:
            self._hook.remove()
        self._hook, self._armed = None, False


def reconstruction_figure(x: Tensor, x_hat: Tensor, title: str) -> Any | None:
    """Inputs (top row) and reconstructions (bottom row) of ``x`` [n, ...] and ``x_hat`` (its
    shape); None when ``x`` is not images (see :func:`image_layout`)."""
    layout = image_layout(x)
    if layout is None:
        return None
    flat, shape = layout
    shown_x, shown, how = displayable(flat, x_hat.reshape(flat.shape))
    from vaeloss.audit.figures import image_grid_figure

    note = " (sigmoid of the outputs: they look like logits)" if how == "logits" else ""
    return image_grid_figure([("input", shown_x), ("recon", shown)], shape, len(flat), title + note)
