"""Progress of a long phase (training, evaluation) on stderr: a tqdm bar on a terminal, a line
every few seconds elsewhere (a log file, CI, a pipe), or nothing.

>>> import io
>>> out = io.StringIO()
>>> p = Progress(10, what="training", unit="step", mode="lines", stream=out, every=0.0)
>>> p.update(4, note="epoch 1")
>>> p.update(6)
>>> p.close()
>>> lines = out.getvalue().splitlines()
>>> len(lines), lines[0].startswith("vaeloss: training: 4 of 10 steps (40%), epoch 1, ")
(3, True)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any, Literal

from tqdm.auto import tqdm

__all__ = ["LINE_EVERY", "Progress", "ProgressMode", "progress_mode"]

ProgressMode = Literal["bar", "lines", "off"]
LINE_EVERY = 5.0
"""Seconds between progress lines when stderr is not a terminal."""


def progress_mode(progress: bool | None, stream: IO[str] | None = None) -> ProgressMode:
    """How to show progress: ``None`` a bar on a terminal and nothing elsewhere (the library's
    default), ``True`` a bar on a terminal and lines elsewhere (the CLI), ``False`` nothing."""
    if progress is False:
        return "off"
    tty = (stream or sys.stderr).isatty()
    if tty:
        return "bar"
    return "lines" if progress else "off"


class Progress:
    """Counts work done out of ``total`` and shows it as :func:`progress_mode` says.

    ``update(n, note=...)`` adds ``n`` done and sets the note shown after the count (such as
    ``epoch 3, 2 of 8 converged``); in ``lines`` mode a line is written when ``every``
    seconds have passed since the last one, and a last one at :meth:`close` when any was
    (a phase shorter than ``every`` prints nothing).
    """

    def __init__(
        self,
        total: int | None,
        *,
        what: str,
        unit: str,
        mode: ProgressMode,
        stream: IO[str] | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.total, self.what, self.unit, self.mode = total, what, unit, mode
        self.stream = stream or sys.stderr
        self.every, self.clock = LINE_EVERY if every is None else every, clock
        self.done = 0
        self.lines = 0
        self.note = ""
        self.started = self.last = clock()
        self._bar: Any = None
        if mode == "bar":
            self._bar = tqdm(total=total, unit=unit, leave=False, file=self.stream, desc=what)

    def update(self, n: int = 1, *, note: str | None = None) -> None:
        self.done += n
        if note is not None:
            self.note = note
        if self._bar is not None:
            if note is not None:
                self._bar.set_description(f"{self.what} ({note})", refresh=False)
            self._bar.update(n)
        elif self.mode == "lines" and self.clock() - self.last >= self.every:
            self._line()

    def _line(self) -> None:
        self.lines += 1
        self.last = self.clock()
        count = f"{self.done:,} {self.unit}{'s' if self.done != 1 else ''}"
        if self.total:
            count = f"{self.done:,} of {self.total:,} {self.unit}s ({self.done / self.total:.0%})"
        note = f", {self.note}" if self.note else ""
        elapsed = self.last - self.started
        self.stream.write(f"vaeloss: {self.what}: {count}{note}, {elapsed:.0f} s\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "lines" and self.lines:
            self._line()
        self.mode = "off"
