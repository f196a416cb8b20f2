"""Evaluation: the IWAE figure's Monte-Carlo standard error, and K and rows chosen to fit a
time budget."""

import statistics
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaeloss.engine.data import load_dataset
from vaeloss.engine.evaluate import (
    MIN_ROWS,
    PREFERRED_ROWS,
    PREFERRED_SAMPLES,
    RECON_SAMPLES,
    choose_evaluation,
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
    """Each decoder call costs 0.1 ms per row it decodes (rows of all samples and models)."""

    per_row = 1e-4

    def decode(self, z):
        time.sleep(self.per_row * z.shape[:-1].numel())
        return super().decode(z)


def test_evaluation_plan_fits_its_budget():
    m = SlowDecoder(64, (32,), 4, n_models=3)
    x = DIGITS.x_val
    free = plan_evaluation(m, x, max_samples=1000, budget_seconds=None)
    assert (free.iwae_samples, free.rows) == (1000, x.shape[0])
    roomy = plan_evaluation(m, x, max_samples=1000, budget_seconds=1e4)
    assert roomy.iwae_samples == 1000 and roomy.rows == x.shape[0]
    tight = plan_evaluation(m, x, max_samples=1000, budget_seconds=2.0)
    # one pass over 359 rows of 3 models: about 0.11 s, so about 16 passes fit in 90% of 2 s
    assert tight.estimated_seconds <= 0.9 * 2.0 and tight.budget_seconds == 2.0
    assert tight.iwae_samples < PREFERRED_SAMPLES and MIN_ROWS < tight.rows <= PREFERRED_ROWS
    tiny = plan_evaluation(m, x, max_samples=1000, budget_seconds=0.05)
    assert tiny.rows == MIN_ROWS and tiny.iwae_samples == 0 and not tiny.fits  # no floor above it


@given(
    pass_seconds=st.floats(1e-6, 100.0),
    rows=st.integers(1, 5000),
    budget=st.floats(1e-3, 1e4),
    max_samples=st.integers(1, 5000),
)
def test_chosen_evaluation_keeps_to_its_budget(pass_seconds, rows, budget, max_samples):
    plan = choose_evaluation(pass_seconds, rows, budget, max_samples=max_samples)
    assert plan.rows <= rows and plan.iwae_samples <= max_samples
    assert 1 <= plan.recon_samples <= RECON_SAMPLES
    assert plan.rows >= min(MIN_ROWS, rows)
    if plan.fits:
        assert plan.estimated_seconds <= budget * (1 + 1e-9)
    else:
        assert (plan.rows, plan.iwae_samples, plan.recon_samples) == (min(MIN_ROWS, rows), 0, 1)
    more = choose_evaluation(pass_seconds, rows, budget * 2, max_samples=max_samples)
    passes = (plan.iwae_samples + plan.recon_samples) * plan.rows
    assert (more.iwae_samples + more.recon_samples) * more.rows >= passes  # more budget, no less work


def test_evaluation_ends_its_iwae_bound_when_its_budget_runs_out(trained):
    """The machine got slower than planned: the bound uses the samples drawn by then."""
    slow = SlowDecoder(64, (32,), 4, n_models=2)
    slow.load_state_dict(trained.state_dict())
    started = time.perf_counter()
    rows = evaluate_models(
        slow, DIGITS.x_val[:100], likelihood="bernoulli", iwae_samples=2000, budget_seconds=0.5
    )
    took = time.perf_counter() - started
    # one IWAE chunk (100 samples x 100 rows x 2 models) sleeps 2 s: the first ends the bound
    assert rows[0].iwae_samples == rows[1].iwae_samples == 100
    assert rows[0].iwae_nll is not None and rows[0].iwae_se is not None
    assert took < 0.5 + 2.0 + 1.0


def test_evaluation_shows_progress(trained, capsys, monkeypatch):
    import vaeloss.engine.progress as progress

    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)  # a line at every chunk
    evaluate_models(
        trained, DIGITS.x_val, likelihood="bernoulli", iwae_samples=50, max_points=20, progress=True
    )
    assert "vaeloss: IWAE: 50 of 50 samples (100%)" in capsys.readouterr().err


@pytest.mark.parametrize("chunk", [3, 100], ids=["chunks-of-3", "one-chunk"])
def test_a_model_measured_with_others_gets_the_numbers_it_gets_alone(chunk):
    """Model 1 of three (seeds 0, 5, 9) against the same model built and evaluated alone (seed
    5): every Monte-Carlo metric equal, whatever the chunking (a sweep split into groups is
    merged into one report)."""
    together = BatchedMLPVAE(64, (32,), 4, n_models=3, seeds=[0, 5, 9])
    alone = BatchedMLPVAE(64, (32,), 4, n_models=1, seeds=[5])
    kw = dict(likelihood="bernoulli", iwae_samples=20, max_points=60, seed=3, max_per_call=chunk)
    actual = evaluate_models(together, DIGITS.x_val, seeds=[0, 5, 9], **kw)[1]
    expected = evaluate_models(alone, DIGITS.x_val, seeds=[5], **kw)[0]
    names = ("kl", "mutual_information", "recon", "iwae_nll", "iwae_se", "output_diversity", "latent_usage")
    for name in names:
        assert getattr(actual, name) == pytest.approx(getattr(expected, name), rel=1e-5, abs=1e-6), name
    assert actual.active_units == expected.active_units


def test_models_of_another_seed_draw_other_samples():
    """The same weights under another seed: other draws, so another reconstruction estimate."""
    model = BatchedMLPVAE(64, (32,), 4, n_models=1, seeds=[5])
    kw = dict(likelihood="bernoulli", iwae_samples=0, max_points=60)
    first, second = (evaluate_models(model, DIGITS.x_val, seeds=[s], **kw)[0].recon for s in (5, 6))
    assert first != second
