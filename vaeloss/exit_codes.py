"""The exit statuses of the ``vaeloss`` command (the README and ``--help`` state the contract)."""

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """What the ``vaeloss`` command's exit status means.

    >>> int(ExitCode.USAGE_ERROR), int(ExitCode.INTERNAL_ERROR)
    (2, 3)
    """

    OK = 0
    """Done (for ``audit``, collapse is a finding, not a failure)."""
    FINDING = 1
    """An error finding (``check``), or collapse with ``--fail-on-collapse`` (``audit``)."""
    USAGE_ERROR = 2
    """Bad input, or the job cannot run with it: ``error: ...`` says why and what to change."""
    INTERNAL_ERROR = 3
    """A bug in vaeloss: one line naming it, to report."""
    SIGINT = 130
    """Interrupted by SIGINT (Ctrl-C); ``audit`` keeps a partial report."""
    SIGPIPE = 141
    """The reader of the output closed it (``vaeloss check FILE | head``): nothing more is
    written, as a shell's own commands do on SIGPIPE."""
    SIGTERM = 143
    """Interrupted by SIGTERM; ``audit`` keeps a partial report."""
