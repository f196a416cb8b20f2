r"""How many CPU threads torch uses for vaeloss's work, chosen to hold up on a busy machine.

What was measured on the project's 2-core CPU (``bench/contention.py``):

* **Idle**, two threads with OpenMP's default wait policy are fastest: 1.25-1.8x faster than
  one thread, from the digits sweep to an MNIST-size step. ``OMP_WAIT_POLICY=PASSIVE`` makes
  the threads sleep between parallel regions and costs that gain back (it was as slow as one
  thread, up to 2.6x slower on small steps).
* **With one other busy process**, any parallel region waits for the thread that shares its
  core with the other process: two threads are 2-4x slower than one (up to 30x while the
  threads spin), whatever the wait policy or ``GOMP_SPINCOUNT``; one thread runs at about its
  idle speed.

So no fixed setting is right on both: :class:`ThreadTuner` times the work at one thread and at
all of them, keeps the faster, and times both again every few seconds (sooner when the steps
slow down), so that a training run follows the machine's load. The thread count does not
change any result: every kernel the engine runs gives the same bits with 1 or 2 threads
(tested in ``tests/test_threads.py``), so runs stay reproducible from their seed.
Outside repeated work (planning, figures, the check's probing) vaeloss uses one thread
(:func:`single_threaded`), which never waits for a core.

Users of :mod:`vaeloss.engine` in their own process get the same tuning: it only sets
``torch.set_num_threads`` while vaeloss's work runs and restores it afterwards. The
environment variable ``VAELOSS_THREADS`` fixes the count instead (``VAELOSS_THREADS=1``, or
``VAELOSS_THREADS=4``); unset or ``auto``, the tuner chooses.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "ENVIRONMENT",
    "ThreadTuner",
    "available_cores",
    "choose_threads",
    "fixed_threads",
    "single_threaded",
    "thread_candidates",
]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


ENVIRONMENT = "VAELOSS_THREADS"


def fixed_threads() -> int | None:
    """The thread count ``VAELOSS_THREADS`` fixes (None: unset or ``auto``, the tuner chooses).

    Raises:
        InvalidArgumentError: it is set to something else than ``auto`` or a count >= 1.
    """
    text = os.environ.get(ENVIRONMENT, "auto").strip()
    if text in ("", "auto"):
        return None
    if not text.isdigit() or int(text) < 1:
        from vaeloss.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"Expected {ENVIRONMENT} to be auto or a thread count >= 1 but got {ENVIRONMENT}={text!r}. "
            f"Try {ENVIRONMENT}=auto."
        )
    return int(text)


def thread_candidates(most: int) -> tuple[int, ...]:
    """The thread counts worth timing: 1, half the cores (from 4 cores up) and all of them;
    only the count ``VAELOSS_THREADS`` fixes, when it does.

    >>> thread_candidates(1), thread_candidates(2), thread_candidates(16)
    ((1,), (1, 2), (1, 8, 16))
    """
    fixed = fixed_threads()
    if fixed is not None:
        return (fixed,)
    out = {1, max(1, most)}
    if most >= 4:
        out.add(most // 2)
    return tuple(sorted(out))


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run a block with one torch thread and one thread in NumPy's and scikit-learn's pools
    (restored afterwards): for small or one-off work, where a second thread gains little idle
    and loses much on a busy machine. ``VAELOSS_THREADS`` overrides the count."""
    from threadpoolctl import threadpool_limits

    n = fixed_threads() or 1
    with _torch_threads(n), threadpool_limits(n):
        yield


def choose_threads(
    work: Callable[[], Any], *, candidates: tuple[int, ...] | None = None
) -> tuple[int, float]:
    """Run ``work`` once per candidate thread count (after one untimed run) and return the
    fastest count and its seconds. Fewer threads win ties within 5%."""
    import torch

    cands = candidates or thread_candidates(torch.get_num_threads())
    best: tuple[int, float] | None = None
    for n in cands:
        with _torch_threads(n):
            work()
            start = time.perf_counter()
            work()
            took = time.perf_counter() - start
        if best is None or took < 0.95 * best[1]:
            best = (n, took)
    assert best is not None
    return best


@dataclass
class _Trial:
    """Step times measured at one thread count during a trial."""

    threads: int
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("inf")


class _Recent:
    """The last choice a tuner of this process made, so that the next phase (evaluation after
    training) starts from it instead of timing the slower count again."""

    made: tuple[tuple[int, ...], float, int] | None = None

    @classmethod
    def remember(cls, candidates: tuple[int, ...], when: float, threads: int) -> None:
        cls.made = (candidates, when, threads)

    @classmethod
    def choice(cls, candidates: tuple[int, ...], now: float, max_age: float) -> int | None:
        if cls.made is None:
            return None
        cands, when, threads = cls.made
        return threads if cands == candidates and 0 <= now - when <= max_age else None


@dataclass
class ThreadTuner:
    """Chooses torch's intra-op thread count for a repeated step by timing it.

    Use ``with tuner.step(): ...`` around each step (the time between steps, such as a
    validation pass, is not counted), and ``with tuner:`` around the whole loop (it restores
    torch's thread count at the end).

    A *trial* interleaves the candidates, one thread first: ``rounds`` rounds in which each
    candidate runs ``warmup`` untimed steps and ``block`` timed ones, so that a machine whose
    speed drifts (it does, by up to 1.6x within minutes) slows every candidate alike. A
    candidate whose round took more than twice the best one's is clearly slower (two threads
    beside a busy process) and is dropped from the later rounds. The count with the lowest
    median step is then used until ``recheck`` seconds have passed (doubling, up to
    ``max_recheck``, while the choice stays the same) or until the median of the last steps
    exceeds ``drift`` times the chosen count's trial median (the load changed); then a new
    trial starts.

    Attributes:
        candidates: thread counts to choose among (one count: no tuning).
        chosen: the current choice (None during the first trial).
        history: ``(seconds since the start, threads)`` at every change of choice.
    """

    candidates: tuple[int, ...]
    rounds: int = 3
    block: int = 2
    warmup: int = 1
    recheck: float = 1.0
    max_recheck: float = 60.0
    drift: float = 1.5
    clock: Callable[[], float] = time.perf_counter
    chosen: int | None = None
    history: list[tuple[float, int]] = field(default_factory=list)
    _trials: dict[int, _Trial] = field(default_factory=dict)
    _pending: list[tuple[int, bool]] = field(default_factory=list)
    _round: dict[int, float] = field(default_factory=dict)
    _chosen_median: float = 0.0
    _recent: list[float] = field(default_factory=list)
    _next_check: float = 0.0
    _interval: float = 0.0
    _started: float = 0.0
    _saved: int | None = None
    _measuring: int = 0

    @classmethod
    def for_device(cls, device: torch.device | str, **options: Any) -> ThreadTuner:
        """A tuner for work on ``device``: the CPU's candidates, or none to choose on a GPU
        (the host threads there only launch kernels)."""
        import torch

        kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
        if kind != "cpu":
            return cls((torch.get_num_threads(),), **options)
        return cls(thread_candidates(torch.get_num_threads()), **options)

    def _hold(self) -> None:
        """A single candidate: run at it (``VAELOSS_THREADS``, or one core)."""
        import torch

        if torch.get_num_threads() != self.candidates[0]:
            torch.set_num_threads(self.candidates[0])

    @property
    def tuning(self) -> bool:
        return len(self.candidates) > 1

    def __enter__(self) -> ThreadTuner:
        import torch

        self._saved = torch.get_num_threads()
        self._started = self.clock()
        self._interval = self.recheck
        if self.tuning:
            recent = _Recent.choice(self.candidates, self.clock(), self.max_recheck)
            if recent is None:
                self._start_trial()
            else:  # another tuner of this process just chose: start from its choice
                self.chosen, self._measuring = recent, self.window
                self._next_check = self.clock() + self.recheck
            torch.set_num_threads(self.current)  # the work between steps runs at the choice too
        else:
            self._hold()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        if self._saved is not None and torch.get_num_threads() != self._saved:
            torch.set_num_threads(self._saved)

    @property
    def window(self) -> int:
        """Steps whose median is compared with the choice's trial median (the drift check)."""
        return self.rounds * self.block

    @property
    def current(self) -> int:
        """The thread count the next step runs with."""
        if self._pending:
            return self._pending[0][0]
        return self.chosen if self.chosen is not None else self.candidates[-1]

    @contextmanager
    def step(self) -> Iterator[None]:
        """Time one step at the thread count the schedule says."""
        if not self.tuning:
            yield
            return
        import torch

        n = self.current
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        start = self.clock()
        yield
        self.record(self.clock() - start)

    def record(self, seconds: float) -> None:
        """Account for one step of ``seconds`` at :attr:`current` threads."""
        if self._pending:
            self._trial_step(seconds)
            return
        self._recent.append(seconds)
        del self._recent[: -self.window]
        if self._measuring:  # the first steps at a choice taken over from another tuner
            self._measuring -= 1
            if not self._measuring:
                self._chosen_median = statistics.median(self._recent)
            return
        drifted = (
            len(self._recent) == self.window
            and statistics.median(self._recent) > self.drift * self._chosen_median
        )
        if self.clock() >= self._next_check or drifted:
            if drifted:
                self._interval = self.recheck
            self._start_trial()

    def _trial_step(self, seconds: float) -> None:
        threads, timed = self._pending.pop(0)
        if timed:
            self._trials[threads].times.append(seconds)
            self._round[threads] = self._round.get(threads, 0.0) + seconds
        if any(n == threads for n, _ in self._pending[: self.warmup + self.block - 1]):
            return  # this candidate's block goes on
        if len(self._round) == len(self._live()):  # a round is over: drop the clearly slower
            best = min(self._round.values())
            slow = {n for n, t in self._round.items() if t > 2 * best}
            self._pending = [(n, m) for n, m in self._pending if n not in slow]
            self._round = {}
        if not self._pending:
            self._decide()

    def _live(self) -> set[int]:
        """The candidates still in the trial."""
        return {n for n, _ in self._pending} | set(self._round)

    def _start_trial(self) -> None:
        self._trials = {n: _Trial(n) for n in self.candidates}
        self._round = {}
        block = [False] * self.warmup + [True] * self.block
        self._pending = [(n, m) for _ in range(self.rounds) for n in self.candidates for m in block]
        self._recent = []

    def _decide(self) -> None:
        trials = [self._trials[n] for n in self.candidates]
        best = trials[0]
        for t in trials[1:]:
            if t.median < 0.95 * best.median:
                best = t
        if best.threads == self.chosen:
            self._interval = min(self.max_recheck, 2 * self._interval)
        else:
            self._interval = self.recheck
            self.history.append((self.clock() - self._started, best.threads))
        self.chosen, self._chosen_median = best.threads, best.median
        self._next_check = self.clock() + self._interval
        _Recent.remember(self.candidates, self.clock(), best.threads)
