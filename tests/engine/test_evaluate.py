"""Evaluation: the IWAE figure's Monte-Carlo standard error, and K and rows chosen to fit a
time budget."""

import statistics
import time

import pytest

from vaeloss.engine.data import load_dataset
from vaeloss.engine.evaluate import (
    _RECON_SAMPLES,
    MIN_EVAL_ROWS,
    MIN_IWAE_SAMPLES,
    evaluate_models,
    plan_evaluation,
)
from vaeloss.engine.models import BatchedMLPVAE
from vaeloss.engine.trainer import TrainConfig, train

DIGITS = load_dataset("digits")


@pytest.fixture(scope="module")
def trained():
    m = BatchedMLPVAE(64, (32,), 4, n_models=2)
    train(m, DIGITS, TrainConfig(betas=[0.3, 1.0], epochs=5, batch_size=64, lr=3e-3))
    return m


def test_iwae_standard_error_matches_the_spread_over_draws(trained):
    """The delta-method standard error against the standard deviation of 40 independent
    estimates (different seeds, same rows), for the better-trained model (beta 1). (With
    heavy-tailed importance weights, as in the other, the delta method understates it; the
    README says so.)"""
    runs = [
        evaluate_models(
            trained, DIGITS.x_val, likelihood="bernoulli", iwae_samples=64, max_points=40, seed=seed
        )
        for seed in range(40)
    ]
    spread = statistics.stdev(r[1].iwae_nll for r in runs)
    reported = statistics.mean(r[1].iwae_se for r in runs)
    assert 0.6 < reported / spread < 1.6, (reported, spread)


def test_iwae_standard_error_shrinks_with_k(trained):
    se = {
        K: evaluate_models(trained, DIGITS.x_val, likelihood="bernoulli", iwae_samples=K, max_points=100)[
            0
        ].iwae_se
        for K in (16, 256)
    }
    assert se[256] < se[16]


class SlowDecoder(BatchedMLPVAE):
    """Each decoder call costs at least 5 ms, whatever its size."""

    def decode(self, z):
        time.sleep(0.005)
        return super().decode(z)


def test_evaluation_plan_fits_its_budget():
    m = SlowDecoder(64, (32,), 4, n_models=3)
    x = DIGITS.x_val
    free = plan_evaluation(m, x, max_samples=1000, budget_seconds=None)
    assert (free.iwae_samples, free.rows) == (1000, x.shape[0])
    roomy = plan_evaluation(m, x, max_samples=1000, budget_seconds=1e4)
    assert roomy.iwae_samples == 1000 and roomy.rows == x.shape[0]
    tight = plan_evaluation(m, x, max_samples=1000, budget_seconds=0.2)
    expected = min(1000, max(MIN_IWAE_SAMPLES, int(0.2 / tight.decode_seconds) - _RECON_SAMPLES - 2))
    assert tight.iwae_samples == expected < 1000
    assert tight.iwae_samples * tight.decode_seconds < 0.2 * 1.5
    tiny = plan_evaluation(m, x, max_samples=1000, budget_seconds=1e-6)
    assert tiny.iwae_samples == MIN_IWAE_SAMPLES and tiny.rows == min(MIN_EVAL_ROWS, x.shape[0])


def test_evaluation_shows_progress(trained, capsys):
    evaluate_models(
        trained, DIGITS.x_val, likelihood="bernoulli", iwae_samples=50, max_points=20, progress=True
    )
    assert "IWAE" in capsys.readouterr().err
