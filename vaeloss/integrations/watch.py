"""What the callbacks tell the user about collapse, in one place: a warning once the model has
been collapsed for ``patience`` evaluations in a row, and whether to stop training."""

from __future__ import annotations

import warnings

from vaeloss.metrics import CollapseSummary
from vaeloss.validation import check_positive_int

__all__ = ["CollapseWarning", "CollapseWatch"]


class CollapseWarning(UserWarning):
    """The model being trained has collapsed: every input gets the prior as its posterior."""


class CollapseWatch:
    """Counts collapsed evaluations in a row; warns once after ``patience`` of them.

    >>> from vaeloss.metrics import summarize
    >>> import torch
    >>> watch = CollapseWatch(patience=2, stop_on_collapse=True)
    >>> collapsed = summarize(torch.zeros(8, 2), torch.zeros(8, 2))
    >>> watch.observe(collapsed, "epoch")
    False
    """

    def __init__(self, *, patience: int = 1, stop_on_collapse: bool = False) -> None:
        self.patience = check_positive_int("patience", patience, example=3)
        self.stop_on_collapse = stop_on_collapse
        self.collapsed, self.warned = 0, False

    def observe(self, summary: CollapseSummary, unit: str) -> bool:
        """Record one evaluation (``unit``: what it is, for the message); whether to stop."""
        self.collapsed = self.collapsed + 1 if summary.posterior_collapsed else 0
        if self.collapsed < self.patience:
            return False
        if not self.warned:
            self.warned = True
            warnings.warn(
                f"posterior collapse: 0 of {summary.latent_dim} latent dims active for "
                f"{self.collapsed} {unit}(s) in a row (KL {summary.kl:.3g} nats per sample): every "
                "input gets the same posterior, so the decoder ignores z. Lower the KL weight "
                "(vaeloss audit recommends one in your loss's units)"
                + ("; stopping training (stop_on_collapse=True)." if self.stop_on_collapse else "."),
                CollapseWarning,
                stacklevel=3,
            )
        return self.stop_on_collapse
