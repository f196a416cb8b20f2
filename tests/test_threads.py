"""The thread policy: the tuner's choices on scripted step times, and the fact it relies on
(the thread count does not change any result)."""

import pytest
import torch

from vaeloss import InvalidArgumentError
from vaeloss.engine.build import build_model
from vaeloss.engine.data import Dataset, load_dataset
from vaeloss.engine.evaluate import evaluate_models
from vaeloss.engine.models import BatchedMLPVAE
from vaeloss.engine.trainer import TrainConfig, train
from vaeloss.threads import (
    ThreadTuner,
    _Recent,
    choose_threads,
    fixed_threads,
    single_threaded,
    thread_candidates,
)


class Machine:
    """A scripted machine: the seconds a step takes at each thread count, and a clock."""

    def __init__(self, seconds):
        self.seconds = dict(seconds)
        self.now = 0.0
        self.steps = {n: 0 for n in seconds}

    def clock(self):
        return self.now

    def run(self, tuner, steps):
        for _ in range(steps):
            n = tuner.current
            self.now += self.seconds[n]
            self.steps[n] += 1
            tuner.record(self.seconds[n])


@pytest.fixture(autouse=True)
def _fresh():
    """No choice of an earlier tuner carries over into a test, and torch's count is kept."""
    before = torch.get_num_threads()
    _Recent.made = None
    yield
    _Recent.made = None
    torch.set_num_threads(before)


def _tuner(machine, **kw):
    return ThreadTuner((1, 2), clock=machine.clock, **{"recheck": 5.0, **kw})


def test_the_faster_count_is_chosen():
    m = Machine({1: 1.0, 2: 0.5})
    with _tuner(m) as tuner:
        m.run(tuner, 18)
    assert tuner.chosen == 2
    # after one trial: 3 rounds of each count, one untimed and two timed steps a round
    assert tuner.history == [(pytest.approx(9 * 1.0 + 9 * 0.5), 2)]


def test_fewer_threads_win_a_near_tie():
    m = Machine({1: 1.0, 2: 0.97})
    with _tuner(m) as tuner:
        m.run(tuner, 18)
    assert tuner.chosen == 1


def test_a_clearly_slower_count_is_abandoned_early():
    """Beside a busy process two threads can be 10x slower: the trial stops after one timed step."""
    m = Machine({1: 1.0, 2: 10.0})
    with _tuner(m) as tuner:
        m.run(tuner, 12)
    assert tuner.chosen == 1
    assert m.steps[2] == 3  # one round only: an untimed step and two timed ones


def test_a_load_that_arrives_later_is_followed():
    m = Machine({1: 1.0, 2: 0.5})
    with _tuner(m) as tuner:
        m.run(tuner, 18)
        assert tuner.chosen == 2
        m.seconds[2] = 3.0  # another process starts: two threads now wait for a core
        m.run(tuner, 30)
    assert tuner.chosen == 1
    assert [threads for _, threads in tuner.history] == [2, 1]


def test_an_unchanged_choice_is_checked_less_and_less_often():
    m = Machine({1: 1.0, 2: 0.5})
    with _tuner(m, recheck=5.0, max_recheck=20.0) as tuner:
        m.run(tuner, 400)
    # trials at t = 0, then after 5, 10, 20, 20, ... seconds at two threads: few steps at one
    trials = m.steps[1] // 9
    assert 6 <= trials <= 10, m.steps
    assert tuner.chosen == 2


def test_a_recent_choice_is_taken_over_without_a_trial():
    m = Machine({1: 1.0, 2: 0.5})
    with _tuner(m) as first:
        m.run(first, 20)
    m.steps = {1: 0, 2: 0}
    with _tuner(m) as second:
        m.run(second, 8)
    assert second.chosen == 2 and m.steps == {1: 0, 2: 8}


def test_threads_are_set_while_tuning_and_restored_after():
    torch.set_num_threads(2)
    m = Machine({1: 1.0, 2: 0.5})
    with _tuner(m) as tuner:
        assert torch.get_num_threads() == 1  # the trial starts at one thread
        with tuner.step():
            pass
    assert torch.get_num_threads() == 2


def test_candidates_and_the_environment(monkeypatch):
    monkeypatch.delenv("VAELOSS_THREADS", raising=False)
    assert thread_candidates(2) == (1, 2) and fixed_threads() is None
    monkeypatch.setenv("VAELOSS_THREADS", "3")
    assert thread_candidates(2) == (3,) and not ThreadTuner.for_device("cpu").tuning
    monkeypatch.setenv("VAELOSS_THREADS", "many")
    with pytest.raises(
        InvalidArgumentError, match=r"auto or a thread count >= 1 but got VAELOSS_THREADS='many'"
    ):
        thread_candidates(2)


def test_single_threaded_restores_the_count():
    torch.set_num_threads(2)
    with single_threaded():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_choose_threads_times_each_candidate():
    import time

    def work():
        time.sleep(0.02 if torch.get_num_threads() == 1 else 0.002)

    threads, seconds = choose_threads(work, candidates=(1, 2))
    assert threads == 2 and seconds < 0.015


DIGITS = load_dataset("digits")
SMALL = Dataset("digits", DIGITS.x_train[:512], DIGITS.x_val[:128], None, None, (1, 8, 8))


def _trained(kind, monkeypatch, threads):
    monkeypatch.setenv("VAELOSS_THREADS", str(threads))
    if kind == "mlp":
        model = BatchedMLPVAE(64, (128,), 8, n_models=3)
    else:
        model, _ = build_model("conv", data_dim=64, shape=(1, 8, 8), hidden=(), latent_dim=4, n_models=3)
    train(model, SMALL, TrainConfig(betas=[0.3, 1.0, 3.0], epochs=2, batch_size=64, lr=3e-3))
    metrics = evaluate_models(model, SMALL.x_val, likelihood="bernoulli", iwae_samples=40)
    return [p.detach().clone() for p in model.parameters()], [m.iwae_nll for m in metrics]


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_the_thread_count_changes_no_result(kind, monkeypatch):
    """What lets the tuner choose by timing and keep runs reproducible from their seed: the
    same training and evaluation at 1 and at 2 threads give the same bits."""
    params_1, iwae_1 = _trained(kind, monkeypatch, 1)
    params_2, iwae_2 = _trained(kind, monkeypatch, 2)
    assert all(torch.equal(a, b) for a, b in zip(params_1, params_2))
    assert iwae_1 == iwae_2


def test_training_reports_the_tuners_choices(monkeypatch):
    monkeypatch.delenv("VAELOSS_THREADS", raising=False)
    torch.set_num_threads(2)  # under pytest-xdist each worker runs one thread: give it a choice
    model = BatchedMLPVAE(64, (32,), 4, n_models=2)
    res = train(model, SMALL, TrainConfig(betas=[1.0, 2.0], epochs=3, batch_size=32))
    assert res.threads and all(n in (1, 2) for _, n in res.threads)
    assert torch.get_num_threads() == 2
