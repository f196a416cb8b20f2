"""A request to stop an audit early: asked by every long step, set by the CLI's signal handlers."""

from __future__ import annotations

__all__ = ["StopRequest"]


class StopRequest:
    """Whether (and why) the audit was asked to stop. Calling it answers ``should_stop()``.

    >>> stop = StopRequest()
    >>> stop(), stop.reason
    (False, None)
    >>> stop.request("SIGINT"); stop(), stop.reason
    (True, 'SIGINT')
    """

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self) -> bool:
        return self.reason is not None

    def request(self, reason: str) -> None:
        """Ask to stop (the first reason given is kept)."""
        if self.reason is None:
            self.reason = reason
