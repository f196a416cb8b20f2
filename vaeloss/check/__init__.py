"""``vaeloss check``: which objective a user's loss function really is."""

from vaeloss.check.runner import CheckReport, check_loss

__all__ = ["CheckReport", "check_loss"]
