"""The collapse callback for Keras 3's ``model.fit`` (any backend; ``pip install
'vaeloss[keras]'``): at the end of each epoch, the encoder is run on a held-out array and the
collapse scalars (:meth:`vaeloss.metrics.CollapseSummary.scalars`) are written into ``logs``,
where ``History``, ``EarlyStopping`` and Keras's ``TensorBoard`` callback (given after this one)
see them.

>>> import numpy as np
>>> callback = CollapseCallback(np.zeros((8, 4)), lambda x: (x[:, :2], x[:, 2:]))
>>> logs = {}
>>> callback.on_epoch_end(0, logs)
>>> logs["collapse/active_units"], logs["collapse/kl"]
(0.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vaeloss.errors import InvalidArgumentError, missing_extra

try:
    import keras
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise missing_extra("keras", "keras", exc) from None

from vaeloss.integrations.watch import CollapseWarning, CollapseWatch
from vaeloss.metrics import CollapseSummary, summarize
from vaeloss.validation import check_positive_int

__all__ = ["CollapseCallback", "CollapseWarning"]


class CollapseCallback(keras.callbacks.Callback):
    """Collapse scalars in ``logs`` after each epoch (every ``every`` epochs).

    Args:
        data: held-out inputs, as the encoder takes them (an array; a few thousand rows).
        encoder: a Keras model or a function of ``data`` returning ``(z_mean, z_log_var, ...)``
            (the keras.io encoder returns ``[z_mean, z_log_var, z]``); its first two outputs are
            the posterior's mean and log-variance, [N, k] each.
        patience, stop_on_collapse: warn once after ``patience`` collapsed epochs; stop
            training then only with ``stop_on_collapse=True``.
    """

    def __init__(
        self,
        data: Any,
        encoder: Callable[[Any], Any],
        *,
        every: int = 1,
        batch_size: int = 256,
        patience: int = 1,
        stop_on_collapse: bool = False,
    ) -> None:
        super().__init__()
        self.data, self.encoder = data, encoder
        self.every = check_positive_int("every", every, example=1)
        self.batch_size = check_positive_int("batch_size", batch_size, example=256)
        self.watch = CollapseWatch(patience=patience, stop_on_collapse=stop_on_collapse)
        self.last: CollapseSummary | None = None

    def _posterior(self) -> tuple[Any, Any]:
        predict = getattr(self.encoder, "predict", None)
        data = self.data
        out = predict(data, batch_size=self.batch_size, verbose=0) if predict else self.encoder(data)
        if not isinstance(out, (list, tuple)) or len(out) < 2:
            raise InvalidArgumentError(
                f"Expected an encoder returning (z_mean, z_log_var, ...) but got {type(out).__name__}. "
                "Try CollapseCallback(x_val, encoder) with the keras.io encoder, whose outputs are "
                "[z_mean, z_log_var, z]."
            )
        return out[0], out[1]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        mu, logvar = self._posterior()
        summary = summarize(mu, logvar)
        self.last = summary
        if logs is not None:
            logs.update(summary.scalars())
        if self.watch.observe(summary, "epoch") and self.model is not None:
            self.model.stop_training = True
