"""Progress on stderr: a bar on a terminal, a line every few seconds elsewhere."""

import io

import pytest

from vaeloss.engine.progress import Progress, progress_mode


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    ("progress", "tty", "expected"),
    [
        pytest.param(None, True, "bar", id="library-terminal"),
        pytest.param(None, False, "off", id="library-pipe"),
        pytest.param(True, True, "bar", id="cli-terminal"),
        pytest.param(True, False, "lines", id="cli-pipe"),
        pytest.param(False, True, "off", id="off"),
    ],
)
def test_mode(progress, tty, expected):
    assert progress_mode(progress, Tty() if tty else io.StringIO()) == expected


def test_a_line_every_few_seconds_and_a_last_one():
    out, clock = io.StringIO(), Clock()
    p = Progress(None, what="training", unit="step", mode="lines", stream=out, every=5.0, clock=clock)
    for step in range(12):
        clock.now = step * 1.0
        p.update(1, note=f"epoch {step // 4 + 1}")
    p.close()
    actual = out.getvalue().splitlines()
    assert actual == [
        "vaeloss: training: 6 steps, epoch 2, 5 s",
        "vaeloss: training: 11 steps, epoch 3, 10 s",
        "vaeloss: training: 12 steps, epoch 3, 11 s",
    ]


def test_a_short_phase_prints_nothing():
    out, clock = io.StringIO(), Clock()
    p = Progress(100, what="IWAE", unit="sample", mode="lines", stream=out, every=5.0, clock=clock)
    p.update(100)
    p.close()
    assert out.getvalue() == ""


def test_a_bar_on_a_terminal():
    out = Tty()
    p = Progress(10, what="IWAE", unit="sample", mode="bar", stream=out)
    p.update(10)
    p.close()
    assert "IWAE" in out.getvalue() and "/10" in out.getvalue()
