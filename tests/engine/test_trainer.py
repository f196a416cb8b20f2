import math

import pytest
import torch

from vaeloss import DeviceError, InvalidArgumentError
from vaeloss.engine.convergence import ConvergenceRule
from vaeloss.engine.data import Dataset, load_dataset
from vaeloss.engine.models import BatchedMLPVAE
from vaeloss.engine.states import Divergence
from vaeloss.engine.trainer import TrainConfig, kl_weight_schedule, resolve_device, train

DIGITS = load_dataset("digits")
SMALL = Dataset("digits", DIGITS.x_train[:256], DIGITS.x_val[:64], None, None, (64,))


def test_batched_sweep_equals_separate_runs():
    betas = [0.1, 1.0, 10.0]
    cfg = dict(epochs=3, batch_size=32, lr=3e-3, seed=5)
    batch = BatchedMLPVAE(64, (32,), 4, n_models=3, seeds=[7, 7, 7])
    together = train(batch, SMALL, TrainConfig(betas=betas, model_seeds=[7, 7, 7], **cfg)).history
    for s, beta in enumerate(betas):
        alone = BatchedMLPVAE(64, (32,), 4, n_models=1, seeds=[7])
        h = train(alone, SMALL, TrainConfig(betas=[beta], model_seeds=[7], **cfg)).history
        t = together[together.model == s].reset_index(drop=True)
        for col in ("train_recon", "train_kl", "val_recon", "val_kl"):
            assert t[col].tolist() == pytest.approx(h[col].tolist(), rel=1e-4, abs=1e-4)
        for p_batch, p_alone in zip(batch.parameters(), alone.parameters()):
            torch.testing.assert_close(p_batch.detach()[s], p_alone.detach()[0], rtol=1e-4, atol=1e-5)


def test_deterministic_on_cpu():
    runs = [
        train(
            BatchedMLPVAE(64, (16,), 3, n_models=2, seeds=[1, 2]),
            SMALL,
            TrainConfig(betas=[1, 2], model_seeds=[1, 2], epochs=2, seed=3),
        ).history
        for _ in range(2)
    ]
    assert runs[0].equals(runs[1])


def test_high_beta_collapses_low_beta_does_not():
    """A real outcome: beta = 50 switches every latent dim off; beta = 0.5 keeps several."""
    m = BatchedMLPVAE(64, (64,), 6, n_models=2)
    h = train(m, DIGITS, TrainConfig(betas=[0.5, 50.0], epochs=15, batch_size=64, lr=3e-3)).history
    last = h[h.epoch == 15].set_index("model")
    assert last.loc[1, "active_units"] == 0 and last.loc[1, "val_kl"] < 0.05
    assert last.loc[0, "active_units"] >= 3 and last.loc[0, "val_kl"] > 3
    # KL falls monotonically with beta at the end of training
    assert last.loc[0, "val_kl"] > last.loc[1, "val_kl"]


def test_non_finite_loss_stops_that_model_and_keeps_it():
    m = BatchedMLPVAE(64, (16,), 3, n_models=2)
    with torch.no_grad():
        m.head_b[1].fill_(200.0)  # logvar = 200: exp overflows in float32 -> KL is inf
    before = m.head_w.detach()[1].clone()
    r = train(m, SMALL, TrainConfig(betas=[1, 1], epochs=2))
    assert r.stopped[0] is None
    assert r.stopped[1] == Divergence(step=0, epoch=1, term="KL")
    torch.testing.assert_close(m.head_w.detach()[1], before)
    assert r.history[r.history.model == 0].val_kl.notna().all()


def test_schedules():
    assert [kl_weight_schedule(t, 10) for t in (0, 9)] == [1.0, 1.0]
    lin = [kl_weight_schedule(t, 100, schedule="linear", warmup_fraction=0.5) for t in (0, 25, 50, 99)]
    assert lin == [0.0, 0.5, 1.0, 1.0]
    cyc = [kl_weight_schedule(t, 100, schedule="cyclical", cycles=4) for t in (0, 6, 12, 24, 25)]
    assert cyc == pytest.approx([0.0, 0.48, 0.96, 1.0, 0.0])


def test_free_bits_keeps_kl_up():
    runs = {}
    for fb in (0.0, 1.0):
        m = BatchedMLPVAE(64, (32,), 4, n_models=1)
        h = train(m, SMALL, TrainConfig(betas=[20.0], epochs=8, free_bits=fb, lr=3e-3)).history
        runs[fb] = h.iloc[-1].val_kl
    assert runs[1.0] > runs[0.0] + 0.5


def test_config_errors():
    m = BatchedMLPVAE(64, (8,), 2, n_models=1)
    with pytest.raises(InvalidArgumentError, match=r"number >= 0 but got beta=-1"):
        train(m, SMALL, TrainConfig(betas=[-1]))
    with pytest.raises(InvalidArgumentError, match=r"one beta per model \(1\) but got betas=\[1, 2\]"):
        train(m, SMALL, TrainConfig(betas=[1, 2]))
    with pytest.raises(InvalidArgumentError, match=r"but got schedule='sometimes'"):
        train(m, SMALL, TrainConfig(schedule="sometimes"))  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(
        DeviceError,
        match=r"device='cuda' but torch.cuda.is_available\(\) is False. Try --device cpu",
    ):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_trains_like_cpu():
    res = {}
    for dev in ("cpu", "cuda"):
        m = BatchedMLPVAE(64, (32,), 4, n_models=2)
        h = train(m, SMALL, TrainConfig(betas=[1, 5], epochs=3, device=dev)).history
        res[dev] = h.iloc[-1].val_recon
    assert math.isfinite(res["cuda"]) and res["cuda"] == pytest.approx(res["cpu"], rel=0.05)


def test_bf16_autocast_trains_close_to_float32():
    res = {}
    for bf16 in (False, True):
        m = BatchedMLPVAE(64, (32,), 4, n_models=1)
        h = train(m, SMALL, TrainConfig(betas=[1.0], epochs=4, bf16=bf16, lr=3e-3)).history
        res[bf16] = h.iloc[-1].val_recon
    assert math.isfinite(res[True])
    assert res[True] == pytest.approx(res[False], rel=0.05)


@pytest.mark.slow
def test_compile_option_matches_eager():
    res = {}
    for flag in (False, True):
        m = BatchedMLPVAE(64, (16,), 3, n_models=2)
        h = train(m, SMALL, TrainConfig(betas=[1.0, 4.0], epochs=2, compile=flag)).history
        res[flag] = h.val_recon.tolist()
    assert res[True] == pytest.approx(res[False], rel=1e-3)


def test_readme_engine_example_runs(capsys):
    from pathlib import Path

    text = (Path(__file__).parents[2] / "README.md").read_text()
    block = text.split("```python\n# sweep.py:")[1].split("\n", 1)[1].split("```")[0]
    exec(block, {})
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 4
    kls = [float(r.split()[1]) for r in rows]
    assert kls == sorted(kls, reverse=True)  # KL falls as beta rises


FAST_RULE = ConvergenceRule(patience=2, min_window_steps=1, rel_tol=1e-2, reductions=1)


def _converge(betas, seeds, **extra):
    m = BatchedMLPVAE(64, (32,), 4, n_models=len(betas), seeds=seeds)
    options = dict(epochs=60, batch_size=64, lr=3e-3, until="converged", rule=FAST_RULE, lr_warmup_steps=5)
    cfg = TrainConfig(betas=betas, model_seeds=seeds, **(options | extra))
    return m, train(m, SMALL, cfg)


def test_converged_sweep_equals_separate_runs():
    """Each model reduces its rate and stops on its own: the sweep still equals S runs."""
    betas = [0.5, 5.0, 50.0]
    batch, together = _converge(betas, [3, 3, 3])
    assert all(st.converged for st in together.status)
    assert len({st.epochs for st in together.status}) > 1  # they stopped at different epochs
    for s, beta in enumerate(betas):
        alone, res = _converge([beta], [3])
        assert res.status[0] == together.status[s]
        for p_batch, p_alone in zip(batch.parameters(), alone.parameters()):
            torch.testing.assert_close(p_batch.detach()[s], p_alone.detach()[0], rtol=1e-4, atol=1e-5)


def test_a_converged_model_ends_at_its_best_epoch():
    m, res = _converge([1.0], [0])
    st = res.status[0]
    assert st.converged and st.reason == "converged" and st.lr == 0.0
    best = res.history.val_loss.min()
    assert res.history.val_loss.iloc[st.best_epoch - 1] == best
    # the model as returned has the best epoch's validation loss
    from vaeloss.engine.history import epoch_rows

    rows = epoch_rows(m, SMALL.x_val, torch.zeros(1, 2), 0, 0, res.config, False, torch.zeros(1))
    assert rows[0]["val_loss"] == pytest.approx(best, rel=1e-6)


def test_a_run_cut_short_is_not_converged():
    _, res = _converge([1.0], [0], epochs=3)
    st = res.status[0]
    assert not st.converged and st.reason == "epoch limit" and st.epochs == 3
    assert st.last_relative is not None and st.last_relative > FAST_RULE.rel_tol
    assert st.describe().startswith("not converged (epoch limit after 3 epochs; last relative improvement")
    _, res = _converge([1.0], [0], max_seconds=1e-3)
    assert res.status[0].reason == "time limit" and not res.status[0].converged


def test_fixed_epochs_mode_never_claims_convergence():
    """Even when the plateau rule (which still watches, for the status) would have said so."""
    always_flat = ConvergenceRule(patience=1, min_window_steps=1, rel_tol=2.0, reductions=0)
    m = BatchedMLPVAE(64, (16,), 3, n_models=1)
    res = train(m, SMALL, TrainConfig(betas=[1.0], epochs=4, rule=always_flat))
    assert res.status[0].reason == "fixed epochs" and not res.status[0].converged
    assert res.status[0].epochs == 4


class NanInEval(BatchedMLPVAE):
    """Trains normally; its first copy's reconstructions are NaN in eval() (held-out data)."""

    def decode(self, z):
        out = super().decode(z)
        if self.training:
            return out
        return torch.cat([out[:1] * math.nan, out[1:]])


@pytest.mark.parametrize("until", ["converged", "epochs"])
def test_non_finite_validation_loss_is_a_divergence(until):
    m = NanInEval(64, (16,), 3, n_models=2)
    res = train(m, SMALL, TrainConfig(betas=[1.0, 1.0], epochs=30, until=until, rule=FAST_RULE))
    assert res.stopped[0] == Divergence(int(res.history.step.iloc[0]), 1, "reconstruction")
    assert res.status[0].reason == "diverged" and res.stopped[1] is None
    assert res.status[1].reason in ("converged", "epoch limit", "fixed epochs")
