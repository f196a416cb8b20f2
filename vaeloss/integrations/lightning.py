"""The collapse callback for ``lightning.pytorch`` (``pip install 'vaeloss[lightning]'``); the
old ``pytorch_lightning`` namespace has its own, :mod:`vaeloss.integrations.pytorch_lightning`.

>>> from vaeloss.integrations.lightning import CollapseCallback
>>> CollapseCallback(mu="fc_mu", logvar="fc_logvar").watch.patience
1
"""

from __future__ import annotations

from vaeloss.errors import missing_extra

try:
    import lightning.pytorch as _pl
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise missing_extra("lightning", "lightning", exc) from None

from vaeloss.integrations._lightning_core import callback_class
from vaeloss.integrations.watch import CollapseWarning

__all__ = ["CollapseCallback", "CollapseWarning"]

CollapseCallback = callback_class(_pl.Callback, "vaeloss.integrations.lightning")
