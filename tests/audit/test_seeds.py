"""Several seeds per beta (tests of audit/seeds.py, recommend.best_mean_iwae and ``--seeds``):
the spread of each beta against NumPy's, the recommendation's noise rule on rows made here,
and an audit whose rows per (beta, seed) are the report's, with its first seeds equal to a
one-seed audit's."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from vaeloss.audit.recommend import best_mean_iwae
from vaeloss.audit.result import AuditObjective, SweepRow, Verdict
from vaeloss.audit.seeds import Spread, spreads, within_noise
from vaeloss.cli import main
from vaeloss.engine.evaluate import ModelMetrics
from vaeloss.objective.presets import get_convention

HEALTHY = Verdict("healthy", False, "healthy")
COLLAPSED = Verdict("posterior collapse", True, "collapsed")
SIZES = {"B": 64, "D": 64, "k": 4}
OBJECTIVE = AuditObjective(get_convention("per_sample_mean"), "the per_sample_mean convention", 1.0)


def _row(beta, iwae, *, kl=1.0, units=3, seed=0, verdict=HEALTHY):
    metrics = ModelMetrics(
        kl=kl, kl_per_dim=[kl / 4] * 4, active_units=units, au_variances=[0.5] * 4, collapsed_dims=0,
        mutual_information=kl / 2, marginal_kl=kl / 2, aggregate_kl=0.1, recon=20.0, elbo=-21.0,
        iwae_nll=iwae, iwae_se=0.01, output_diversity=0.5, latent_usage=0.5,
    )  # fmt: skip
    return SweepRow(beta, beta, metrics, verdict, seed=seed)


@pytest.mark.parametrize(
    "values", [[1.0, 2.0, 4.0], [3.5, 3.5], [10.0, 10.1, 9.7, 10.4]], ids=["3", "2-equal", "4"]
)
def test_a_spread_is_numpy_mean_std_and_standard_error(values):
    s = Spread.of(values)
    assert s.mean == pytest.approx(np.mean(values))
    assert s.std == pytest.approx(np.std(values, ddof=1))
    assert s.se == pytest.approx(np.std(values, ddof=1) / math.sqrt(len(values)))


def test_one_seed_has_no_spread_and_is_never_within_noise():
    one = Spread.of([5.0])
    assert one.std is None and one.se is None and not within_noise(one, Spread.of([5.0, 5.0]))


def test_rows_are_grouped_by_beta_in_the_sweeps_order_and_diverged_rows_left_out():
    diverged = SweepRow(1.0, 1.0, None, Verdict("diverged", False, "diverged"), seed=2000006)
    rows = [_row(0.1, 25.0), _row(0.1, 26.0, seed=1000003), _row(1.0, 24.0), diverged]
    first, second = spreads(rows)
    assert (first.elbo_beta, first.rows, second.rows) == (0.1, (0, 1), (2, 3))
    assert first.metrics["iwae_nll"].mean == 25.5 and second.metrics["iwae_nll"].n == 1


def test_the_best_mean_wins_and_a_close_second_is_said_to_be_within_the_noise():
    rows = [_row(0.3, 24.00), _row(0.3, 24.20, seed=1), _row(1.0, 24.15), _row(1.0, 24.25, seed=1)]
    rec = best_mean_iwae(rows, OBJECTIVE, SIZES, iwae_samples=100)
    assert rec.index == 0 and rec.elbo_beta == 0.3
    # means 24.10 and 24.20, standard errors 0.1 and 0.05: the difference 0.1 < hypot(0.1, 0.05)
    assert "lowest mean held-out IWAE NLL across 2 seeds (24.10 ± 0.1 nats" in rec.reason
    assert "the next best, ELBO beta 1 (24.20 ± 0.05), is within the noise of it" in rec.reason


def test_a_clear_winner_is_given_in_standard_errors_and_a_beta_collapsed_at_one_seed_is_out():
    rows = [
        _row(0.1, 20.0, verdict=COLLAPSED), _row(0.1, 20.0, seed=1),  # the lowest, but collapsed once
        _row(0.3, 24.0), _row(0.3, 24.1, seed=1),
        _row(1.0, 25.0), _row(1.0, 25.1, seed=1),
    ]  # fmt: skip
    rec = best_mean_iwae(rows, OBJECTIVE, SIZES, iwae_samples=100)
    assert rec.elbo_beta == 0.3 and rec.index == 2
    gap = 1.0 / math.hypot(0.05, 0.05)  # two values 0.1 apart: std 0.1 / sqrt(2), se 0.05
    assert f"is {gap:.1f} standard errors of their difference worse" in rec.reason
    assert "among the 2 of 3 betas without collapse at any seed" in rec.reason


def _audit(tmp_path, name, *extra):
    out = tmp_path / name
    args = [
        "audit",
        "--epochs",
        "4",
        "--sweep",
        "0.1,1",
        "--iwae-samples",
        "20",
        "--out",
        str(out),
        "--json",
        *extra,
    ]
    return main(args), out


@pytest.mark.slow
def test_rows_per_beta_and_seed_and_the_first_seeds_equal_a_one_seed_audit(tmp_path, capsys):
    code, out = _audit(tmp_path, "two", "--seeds", "2")
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    table = pd.read_csv(out / "sweep.csv")
    assert table["beta_elbo"].tolist() == [0.1, 0.1, 1.0, 1.0]
    assert table["seed"].tolist() == [0, 1_000_003, 0, 1_000_003]
    assert data["seeds"] == 2 and len(data["sweep"]) == 4
    for beta, summary in zip([0.1, 1.0], data["per_beta"]):
        rows = table[table["beta_elbo"] == beta]
        for name in ("kl", "recon", "iwae_nll", "active_units"):
            assert summary[name]["mean"] == pytest.approx(rows[name].mean(), rel=1e-9)
            assert summary[name]["std"] == pytest.approx(rows[name].std(ddof=1), rel=1e-9, abs=1e-12)
    assert "## Across seeds (2 per beta: mean ± standard deviation)" in (out / "report.md").read_text()

    code, one_out = _audit(tmp_path, "one")
    assert code == 0
    capsys.readouterr()
    one = pd.read_csv(one_out / "sweep.csv")
    first = table[table["seed"] == 0].reset_index(drop=True)
    assert first["active_units"].tolist() == one["active_units"].tolist()
    # the same seeds train the same models, whatever else is batched with them: their analytic KL
    # agrees (float32 sums in another order); the Monte-Carlo estimates (recon, IWAE, MI) draw
    # from one generator for the whole batch of models, so they differ by their noise
    np.testing.assert_allclose(first["kl"], one["kl"], rtol=1e-4)
