"""The exit statuses of the ``vaeloss`` command (the README states the contract).

* 0: done (for ``audit``, collapse is a finding, not a failure);
* 1: an error finding (``check``) or collapse with ``--fail-on-collapse`` (``audit``);
* 2: bad input, or the job cannot run; also an internal error ("this is a bug in vaeloss");
* 130 / 143: interrupted by SIGINT / SIGTERM (``audit`` keeps a partial report).
"""

__all__ = ["EXIT_ERROR", "EXIT_FINDING", "EXIT_OK", "EXIT_SIGINT", "EXIT_SIGTERM"]

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_ERROR = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
