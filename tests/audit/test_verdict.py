"""The verdict rules, and the threshold below which a model is too early to tell."""

import pytest

from vaeloss.audit.verdict import TOO_EARLY_RELATIVE, too_early_reason
from vaeloss.engine.states import ModelStatus


def _status(epochs, last_relative, reason="time limit", converged=False):
    return ModelStatus(converged, epochs, epochs, last_relative, 3e-3, reason, window=5)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(_status(1, None), "before its progress could be measured", id="one-epoch"),
        pytest.param(
            _status(0, None, "interrupted"), "its training was interrupted after 0 epochs", id="no-epoch"
        ),
        pytest.param(
            _status(12, TOO_EARLY_RELATIVE * 1.2), "while its loss was still falling fast", id="falling"
        ),
        pytest.param(_status(40, TOO_EARLY_RELATIVE * 0.8), None, id="slowed-down"),
        pytest.param(_status(3, None, "converged", converged=True), None, id="converged"),
        pytest.param(_status(3, None, "diverged"), None, id="diverged"),
    ],
)
def test_too_early_rule(status, expected):
    actual = too_early_reason(status)
    if expected is None:
        assert actual is None
    else:
        assert actual is not None and expected in actual


def test_the_threshold_is_stated():
    reason = too_early_reason(_status(12, 0.2, "epoch limit"))
    assert reason == (
        "the epoch limit ended its training after 12 epochs while its loss was still falling fast "
        "(its last 5 epochs brought 20% of all its improvement; a verdict needs under 5%)"
    )
