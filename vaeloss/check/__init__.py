"""``vaeloss check``: which objective a user's loss function really is."""

from vaeloss.check.result import CheckReport
from vaeloss.check.runner import check_loss

__all__ = ["CheckReport", "check_loss"]
