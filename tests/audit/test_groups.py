"""The sweep in groups: how it is split, and a sweep trained in groups joined back into the
result of the sweep trained as one (same numbers), with a lost group's models said lost."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaeloss.audit.execute import LocalExecutor, execute, run_group
from vaeloss.audit.groups import LostGroup, groups_of, join
from vaeloss.audit.plan import AuditOptions, SweepMember, plan_audit
from vaeloss.audit.report import render_markdown
from vaeloss.errors import InvalidArgumentError, TrainingError

pytestmark = pytest.mark.slow


@given(models=st.integers(1, 40), groups=st.integers(1, 50))
def test_groups_cover_the_sweep_in_order_and_differ_by_at_most_one(models, groups):
    members = [SweepMember(i, float(i)) for i in range(models)]
    split = groups_of(members, groups)
    assert len(split) == min(models, groups)
    assert [m for g in split for m in g.members] == members
    assert [p for g in split for p in g.positions] == list(range(models))
    sizes = [len(g.members) for g in split]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_no_groups_is_refused():
    with pytest.raises(InvalidArgumentError, match="Expected at least 1 group but got n_groups=0"):
        groups_of([SweepMember(0, 1.0)], 0)


@dataclasses.dataclass
class InGroups(LocalExecutor):
    """The sweep in ``n`` groups, one after the other in this process; ``lose`` are lost."""

    n: int = 2
    lose: tuple[int, ...] = ()

    def split(self, plan):
        return groups_of(plan.members, self.n)

    def run(self, plan, groups, *, stop, notify, started):
        return [
            LostGroup(g, "its worker failed on all 2 attempts (test)", "nowhere")
            if g.index in self.lose
            else run_group(plan, g, stop=stop, notify=notify, started=started)
            for g in groups
        ]


OPTIONS = AuditOptions(sweep="0.3,1,3", seeds=2, epochs=4, eval_budget=None, iwae_samples=30, progress=False)


@pytest.fixture(scope="module")
def whole():
    return execute(plan_audit(OPTIONS)).result


def test_a_sweep_trained_in_three_groups_equals_it_trained_as_one(whole):
    actual = execute(plan_audit(OPTIONS), executor=InGroups(n=3)).result
    assert [g.positions for g in actual.groups] == [[0, 1], [2, 3], [4, 5]]
    for a, e in zip(actual.sweep, whole.sweep):
        assert (a.elbo_beta, a.seed, a.verdict.name) == (e.elbo_beta, e.seed, e.verdict.name)
        assert a.metrics.active_units == e.metrics.active_units
        assert a.metrics.kl == pytest.approx(e.metrics.kl, rel=1e-5, abs=1e-6)
        assert a.metrics.iwae_nll == pytest.approx(e.metrics.iwae_nll, rel=1e-5)
        assert a.status.epochs == e.status.epochs


def test_a_lost_groups_models_are_said_lost_and_the_rest_kept(whole):
    run = execute(plan_audit(OPTIONS), executor=InGroups(n=3, lose=(2,)))
    res = run.result
    assert [r.verdict.name for r in res.sweep[4:]] == ["lost", "lost"]
    assert all(r.metrics is None for r in res.sweep[4:])
    assert (
        res.sweep[4].verdict.headline
        == "lost: its worker failed on all 2 attempts (test); nothing was measured"
    )
    assert res.sweep[0].metrics.kl == pytest.approx(whole.sweep[0].metrics.kl, rel=1e-5)
    assert res.groups[2].lost is not None and res.to_json()["groups"][2]["lost"].startswith(
        "its worker failed"
    )
    assert run.model.runs(0) and not run.model.runs(5)
    md = render_markdown(res, {})
    assert "one step of the first group's 2 models " in md
    assert "of 4 that came back (of the sweep's 6) converged" in md
    assert "| 2 | 4, 5 | 3 | nowhere: **lost**, its worker failed on all 2 attempts (test) | - | - |" in md


def test_every_group_lost_is_an_error_naming_the_reason():
    with pytest.raises(
        TrainingError, match="every one was lost \\(first: its worker failed on all 2 attempts"
    ):
        execute(plan_audit(OPTIONS), executor=InGroups(n=2, lose=(0, 1)))


def test_history_is_numbered_across_the_sweep():
    hist = execute(plan_audit(OPTIONS), executor=InGroups(n=2)).history
    assert sorted(hist["model"].unique()) == list(range(6))
    assert join([]).model is None


def test_a_report_is_written_when_the_audited_models_group_was_lost(tmp_path):
    """The audited beta's models lost: its verdict says so, the figures drawn from it are left
    out, the sweep's own figure is drawn."""
    from vaeloss.audit.output import prepare_report_folder
    from vaeloss.audit.report import format_summary, write_report

    run = execute(plan_audit(OPTIONS), executor=InGroups(n=3, lose=(1,)))
    assert run.result.verdict.name == "lost"
    folder = write_report(run, prepare_report_folder(tmp_path / "r", overwrite=False))
    files = {p.name for p in folder.iterdir()}
    assert "rate_distortion.png" in files and "reconstructions.png" not in files and "latent.png" not in files
    summary = format_summary(run.result)
    assert summary.splitlines()[0].startswith("lost: its worker failed")
    assert "ran in 3 groups: this process (see the report)" in summary
    assert "lost: 2 of 6 models (1 group)" in format_summary(run.result)
