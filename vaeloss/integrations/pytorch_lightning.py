"""The collapse callback for the old ``pytorch_lightning`` namespace (a callback of one
namespace cannot be given to the other's ``Trainer``); see :mod:`vaeloss.integrations.lightning`.
"""

from __future__ import annotations

from vaeloss.errors import missing_extra

try:
    import pytorch_lightning as _pl
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise missing_extra("lightning", "pytorch_lightning", exc) from None

from vaeloss.integrations._lightning_core import callback_class
from vaeloss.integrations.watch import CollapseWarning

__all__ = ["CollapseCallback", "CollapseWarning"]

CollapseCallback = callback_class(_pl.Callback, "vaeloss.integrations.pytorch_lightning")
