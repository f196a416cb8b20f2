"""`vaeloss check --timeout` counts the time spent in the user's code (loading the file and
calling the loss), not Python's start-up nor the probe's own work: a busy machine slows the
probe, never an ordinary loss into a time-out."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaeloss.check.protocol import CallFinished, CallStarted, CheckRequest, PhaseStarted
from vaeloss.check.runner import OWN_LIMIT, _Worker

EXAMPLE = Path(__file__).parents[2] / "vaeloss" / "examples" / "sum_bce_sum_kld.py"


def _worker(timeout=3.0):
    request = CheckRequest(
        path="/somewhere/loss.py",
        module="loss",
        search_path=(),
        names=("loss",),
        explicit=True,
        args={},
        init={},
        sizes={"B": 128, "D": 784, "k": 20},
        input_shape=None,
        timeout=timeout,
        exec_module=False,
    )
    w = _Worker(request, timeout)
    w.started = 0.0
    return w


def test_only_the_users_code_counts():
    w = _worker()
    w._receive(PhaseStarted("start"), 0.0)
    w._receive(PhaseStarted("import"), 4.0)  # Python and torch took 4 s to start: not counted
    w._receive(PhaseStarted("call"), 4.2)  # the file loaded in 0.2 s
    now = 4.2
    for _ in range(80):
        now += 0.5  # the probe's own work between calls, on a very busy machine
        w._receive(CallStarted(), now)
        now += 0.001
        w._receive(CallFinished(0.001), now)
    assert now > 40
    assert w._left(now) == pytest.approx(3.0 - 0.2 - 80 * 0.001)


def test_a_call_that_does_not_return_runs_out_the_clock():
    w = _worker()
    w._receive(PhaseStarted("import"), 1.0)
    w._receive(PhaseStarted("call"), 1.5)
    w._receive(CallStarted(), 2.0)
    assert w._left(4.4) == pytest.approx(0.1)
    assert w._left(4.6) < 0
    assert "the first call did not return (the call phase)" in w._timeout_message()


def test_loading_counts_while_it_runs():
    w = _worker()
    w._receive(PhaseStarted("import"), 1.0)
    assert w._left(3.5) == pytest.approx(0.5)
    assert w._left(4.5) < 0


def test_the_probes_own_work_has_a_limit_of_its_own():
    w = _worker(timeout=60.0)
    w._receive(PhaseStarted("import"), 0.0)
    w._receive(PhaseStarted("call"), 1.0)
    assert w._left(OWN_LIMIT + 2.0) < 0
    message = w._timeout_message()
    assert message.startswith(
        f"Expected the probe's own work to finish within {OWN_LIMIT:g} s but it did not"
    )


def _busy(n, seconds):
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


@pytest.mark.slow
def test_no_time_out_beside_two_busy_processes(tmp_path):
    """As a user runs it (torch's default threads, no OMP_NUM_THREADS), beside two busy
    processes: an ordinary loss checks within --timeout 3."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "VAELOSS_THREADS")}
    busy = _busy(2, 120)
    try:
        for _ in range(2):
            proc = subprocess.run(
                [sys.executable, "-m", "vaeloss", "check", str(EXAMPLE), "--timeout", "3"],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stderr
            assert "effective beta: 1 " in proc.stdout
    finally:
        for p in busy:
            p.kill()
            p.wait()
