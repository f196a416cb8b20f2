"""Check many generated files in one process (one import of the framework for all of them).

``python batch.py SPECS.pickle OUTCOMES.pickle [TIMEOUT]``: the specs' files are checked in
this process, in order, each with ``TIMEOUT`` seconds (SIGALRM; a time-out is an outcome), and
the outcomes written as a pickle. The user code's prints go to this process's stdout, so the
results travel through a file.
"""

from __future__ import annotations

import pickle
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import Outcome, run_spec  # noqa: E402
from lossgen import Spec  # noqa: E402


class _TimeOut(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _TimeOut


def run_batch(specs: list[Spec], folder: Path, timeout: float) -> list[Outcome]:
    signal.signal(signal.SIGALRM, _alarm)
    out = []
    for i, spec in enumerate(specs):
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            outcome = run_spec(spec, folder / str(i), isolate=False)
        except _TimeOut:
            outcome = Outcome(
                spec, "timeout", f"no answer within {timeout:g} s", time.perf_counter() - started
            )
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out.append(outcome)
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)  # as the check's worker: two of these side by side never wait on a core
    argv = list(sys.argv)  # the checked files' argparse may see another sys.argv
    specs = pickle.loads(Path(argv[1]).read_bytes())
    timeout = float(argv[3]) if len(argv) > 3 else 60.0
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_batch(specs, Path(tmp), timeout)
    Path(argv[2]).write_bytes(pickle.dumps(outcomes))


if __name__ == "__main__":
    main()
