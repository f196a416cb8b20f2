"""CollapseMonitor: the same numbers as the metrics on every row, in bounded memory, and
merging two monitors equals one monitor that saw both."""

import numpy as np
import pytest
import torch

from vaeloss.metrics import (
    CollapseMonitor,
    active_units,
    aggregate_kl,
    collapsed_dims,
    kl_per_dim,
    mutual_information,
    summarize,
)


def _rows(n, seed):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, 4, generator=g, dtype=torch.float64) * torch.tensor([2.0, 1.0, 0.05, 0.0])
    mu = mu + 3.0  # a mean far from 0: the moments must not lose it to cancellation
    logvar = torch.randn(n, 4, generator=g, dtype=torch.float64) * 0.1 - torch.tensor([2.0, 1.0, 0.0, 0.0])
    return mu, logvar


def _fed(batches, **kw):
    mon = CollapseMonitor(**kw)
    for mu, lv in batches:
        mon.update(mu, lv)
    return mon


def test_summary_equals_the_metrics_on_every_row():
    mu, lv = _rows(3000, 0)
    s = _fed([(mu[i : i + 128], lv[i : i + 128]) for i in range(0, 3000, 128)], max_points=5000).summary()
    assert s is not None and s.rows == 3000 and s.latent_dim == 4
    assert s.active_units == active_units(mu).number == 2
    torch.testing.assert_close(
        torch.tensor(s.kl_per_dim, dtype=torch.float64), kl_per_dim(mu, lv), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(
        torch.tensor(s.au_variances, dtype=torch.float64), mu.var(0, unbiased=False), rtol=1e-10, atol=0
    )
    assert s.collapsed_dims == int(collapsed_dims(mu, lv).sum())
    assert s.aggregate_kl == pytest.approx(aggregate_kl(mu, lv), rel=1e-10)
    assert s.marginal_kl == pytest.approx(s.kl - s.mutual_information)
    exact = summarize(mu, lv)
    assert s.mutual_information == pytest.approx(exact.mutual_information, abs=0.05)  # other draws


def test_memory_is_bounded_and_the_sample_uniform():
    mu, lv = _rows(20000, 1)
    mon = _fed([(mu[i : i + 500], lv[i : i + 500]) for i in range(0, 20000, 500)], max_points=400)
    assert mon.state is not None and mon.state.mu.shape == (400, 4)
    # the kept rows are a uniform sample: their mean is the data's, within a few standard errors
    se = mu.std(0) / 400**0.5
    assert ((mon.state.mu.mean(0) - mu.mean(0)).abs() <= 4 * se + 1e-12).all()
    s = mon.summary()
    expected = mutual_information(mu[:2000], lv[:2000])
    assert s is not None and s.mutual_information == pytest.approx(expected, abs=0.1)


def test_merging_two_monitors_equals_one_that_saw_both():
    mu, lv = _rows(1000, 2)
    one = _fed([(mu[:600], lv[:600]), (mu[600:], lv[600:])], max_points=300)
    a = _fed([(mu[:600], lv[:600])], max_points=300, seed=1)
    b = _fed([(mu[600:], lv[600:])], max_points=300, seed=2)
    a.merge(b)
    merged, whole = a.summary(), one.summary()
    assert merged is not None and whole is not None
    assert merged.rows == whole.rows == 1000 and a.state is not None and a.state.mu.shape[0] == 300
    assert merged.active_units == whole.active_units and merged.collapsed_dims == whole.collapsed_dims
    for field in ("kl", "aggregate_kl"):
        assert getattr(merged, field) == pytest.approx(getattr(whole, field), rel=1e-10)
    torch.testing.assert_close(
        torch.tensor(merged.au_variances), torch.tensor(whole.au_variances), rtol=1e-10, atol=0
    )


def test_nothing_seen_is_none():
    mon = CollapseMonitor()
    assert mon.summary() is None
    mon.update(torch.zeros(0, 3), torch.zeros(0, 3))
    assert mon.summary() is None


def test_log_to_a_summary_writer_reads_back_from_the_event_file(tmp_path):
    """``log_to`` writes the summary's scalars through torch's SummaryWriter; TensorBoard's own
    event reader reads the same values back."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(200, 3, generator=g), 0.1 * torch.randn(200, 3, generator=g)
    monitor = CollapseMonitor()
    writer = SummaryWriter(str(tmp_path))
    assert monitor.log_to(writer, 0) is None  # nothing seen yet: nothing written
    monitor.update(mu, logvar)
    summary = monitor.log_to(writer, 7)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    [kl] = events.Scalars("collapse/kl")
    assert (kl.step, kl.value) == (7, pytest.approx(summarize(mu, logvar).kl, rel=1e-6))
    assert events.Scalars("collapse/active_units")[0].value == summary.active_units == 3
    assert sorted(t for t in events.Tags()["scalars"] if "kl_dim" in t) == [
        "collapse/kl_dim/z00", "collapse/kl_dim/z01", "collapse/kl_dim/z02"
    ]  # fmt: skip


def test_numpy_arrays_are_taken_as_tensors():
    g = np.random.default_rng(0)
    mu, logvar = g.standard_normal((64, 4)).astype(np.float32), np.zeros((64, 4), dtype=np.float32)
    monitor = CollapseMonitor()
    monitor.update(mu, logvar)
    actual, expected = monitor.summary(), summarize(torch.from_numpy(mu).double(), torch.zeros(64, 4))
    assert actual is not None
    assert actual.kl == pytest.approx(expected.kl, rel=1e-12)
    assert summarize(mu, logvar).active_units == expected.active_units == 4
