"""The plateau rule on hand-made loss curves."""

import pytest

from vaeloss.engine.convergence import ConvergenceRule, Plateau, window_epochs

RULE = ConvergenceRule(patience=3, reductions=2)


def _run(values, rule=RULE):
    p = Plateau(rule, window=rule.patience)
    return [p.observe(v) for v in values], p


def test_steady_progress_never_plateaus():
    actions, p = _run([100.0 - 10 * i for i in range(12)])
    assert set(actions) == {"improved"}
    assert not p.converged and p.reductions == 0


def test_flat_curve_reduces_twice_then_converges():
    actions, p = _run([10.0, 5.0] + [5.0] * 10)
    # windows of 3 epochs: plateau at epoch 5 (gain since epoch 2 is 0), then every 3 epochs
    assert actions[4] == "reduce" and actions[7] == "reduce" and actions[10] == "converged"
    assert p.converged and p.best == 5.0 and p.best_epoch == 2


def test_relative_improvement_is_a_share_of_all_gain_so_far():
    # gains: 10 -> 1 (9 nats), then 0.0005 over the last window: 0.0005 / 9.0005 < 1e-4
    _, p = _run([10.0, 4.0, 1.0, 1.0, 1.0, 0.9995])
    expected = (1.0 - 0.9995) / (10.0 - 0.9995)
    assert p.last_relative == pytest.approx(expected)


def test_constants_in_the_loss_do_not_matter():
    """The same curve shifted by 1000 nats (a Gaussian constant) makes the same decisions."""
    curve = [5.0, 3.0, 2.0, 1.5, 1.49999, 1.49999, 1.49999, 1.49999, 1.49999, 1.49999]
    assert _run(curve)[0] == _run([v + 1000 for v in curve])[0]


def test_window_covers_enough_steps():
    rule = ConvergenceRule(patience=5, min_window_steps=100)
    assert window_epochs(rule, 1) == 100
    assert window_epochs(rule, 22) == 5
