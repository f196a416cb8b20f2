"""The Lightning collapse callback in a real ``Trainer`` on the CPU: a small VAE on the digits,
a few epochs. The values it logs equal :func:`vaeloss.metrics.summarize` computed here on the
same validation rows with the trained encoder (a different code path from the callback's
monitor); TensorBoard's own event reader reads them back; a model trained at a huge KL weight
is reported collapsed and, with ``stop_on_collapse=True``, stopped."""

import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vaeloss.engine.data import load_dataset
from vaeloss.metrics import mutual_information, summarize

pytest.importorskip("lightning")
DIGITS = load_dataset("digits")
NAMESPACES = ["lightning.pytorch", "pytorch_lightning"]


def _module(pl, beta):
    class DigitsVAE(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
            self.fc_mu, self.fc_logvar = nn.Linear(64, 4), nn.Linear(64, 4)
            self.dec = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64))

        def forward(self, x):
            h = self.enc(x)
            mu, logvar = self.fc_mu(h), self.fc_logvar(h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return self.dec(z), mu, logvar

        def _loss(self, batch):
            (x,) = batch
            logits, mu, logvar = self(x)
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
            return rec + beta * kl

        def training_step(self, batch, batch_idx):
            return self._loss(batch)

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self._loss(batch))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    return DigitsVAE()


def _loaders():
    torch.manual_seed(0)
    train = DataLoader(TensorDataset(torch.as_tensor(DIGITS.x_train)), batch_size=128, shuffle=True)
    val = DataLoader(TensorDataset(torch.as_tensor(DIGITS.x_val)), batch_size=100)
    return train, val


def _fit(namespace, tmp_path, beta, epochs, extra_callbacks=(), **options):
    pl = importlib.import_module(namespace)
    callbacks = importlib.import_module(
        "vaeloss.integrations." + ("lightning" if namespace.startswith("lightning") else "pytorch_lightning")
    )
    torch.manual_seed(0)  # the same weights whatever ran before in this process
    module = _module(pl, beta)
    callback = callbacks.CollapseCallback(**options)
    logger = pl.loggers.TensorBoardLogger(str(tmp_path), name="vae", version=0)
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=logger,
        callbacks=[callback, *extra_callbacks],
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )  # fmt: skip
    train, val = _loaders()
    trainer.fit(module, train, val)
    return trainer, module, callback


@pytest.mark.slow
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_logged_values_equal_the_metrics_of_the_trained_encoder(tmp_path, namespace):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer, module, callback = _fit(namespace, tmp_path, beta=1.0, epochs=3)
    module.eval()
    torch.set_grad_enabled(False)
    h = module.enc(torch.as_tensor(DIGITS.x_val))
    expected = summarize(module.fc_mu(h), module.fc_logvar(h))
    torch.set_grad_enabled(True)
    logged = {k: float(v) for k, v in trainer.logged_metrics.items()}
    assert logged["collapse/active_units"] == expected.active_units
    assert logged["collapse/kl"] == pytest.approx(expected.kl, rel=1e-5)  # logged as float32
    assert logged["collapse/collapsed"] == float(expected.posterior_collapsed) == 0.0
    for j, value in enumerate(expected.kl_per_dim):
        assert logged[f"collapse/kl_dim/z{j:02d}"] == pytest.approx(value, rel=1e-5, abs=1e-7)
    # the mutual information is a Monte-Carlo estimate (one z per row), made on the rows in an
    # order of their own values with the monitor's seed: the same estimate here, of the same rows
    mu_val, logvar_val = module.fc_mu(h).detach().double(), module.fc_logvar(h).detach().double()
    order = torch.from_numpy(np.lexsort(mu_val.numpy().T[::-1]).copy())
    mi = mutual_information(mu_val[order], logvar_val[order], generator=torch.Generator().manual_seed(0))
    assert logged["collapse/mi"] == pytest.approx(mi, rel=1e-5)  # logged as float32

    events = EventAccumulator(str(tmp_path / "vae" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    kl = [e.value for e in events.Scalars("collapse/kl")]
    assert len(kl) == 3  # one per validation epoch, none for the sanity check
    assert kl[-1] == pytest.approx(expected.kl, rel=1e-5)
    assert {"collapse/kl_per_dim", "collapse/reconstructions"} <= set(events.Tags()["images"])
    assert len(events.Images("collapse/reconstructions")) == 3
    # the grid's pair: the first 8 rows of the first validation batch, and the module's output
    # shaped like them (its logits; mu and logvar are [8, 4])
    x, x_hat = callback.recon.pair
    assert torch.equal(x, torch.as_tensor(DIGITS.x_val[:8])) and x_hat.shape == (8, 64)
    assert float(x_hat.min()) < -0.5  # logits, shown through a sigmoid


@pytest.mark.slow
def test_a_collapsed_model_is_reported_and_stopped(tmp_path):
    from vaeloss.integrations.lightning import CollapseWarning

    with pytest.warns(
        CollapseWarning, match=r"posterior collapse: 0 of 4 latent dims active for 2 validation"
    ):
        trainer, _, callback = _fit(
            "lightning.pytorch", tmp_path, beta=500.0, epochs=30, patience=2, stop_on_collapse=True
        )
    assert callback.last is not None and callback.last.posterior_collapsed
    assert float(trainer.logged_metrics["collapse/collapsed"]) == 1.0
    assert trainer.current_epoch < 30  # stopped by the callback, not by max_epochs


@pytest.mark.slow
def test_early_stopping_on_the_active_units_stops_a_collapsing_model(tmp_path):
    """``EarlyStopping(monitor="collapse/active_units", mode="max")``, the README's snippet, sees
    the logged value: the collapsing model stops when its active units stop rising, without
    ``stop_on_collapse``."""
    pl = importlib.import_module("lightning.pytorch")
    stopping = pl.callbacks.EarlyStopping(monitor="collapse/active_units", mode="max", patience=2)
    with pytest.warns(UserWarning):  # the collapse warning
        trainer, _, callback = _fit("lightning.pytorch", tmp_path, 500.0, 30, extra_callbacks=[stopping])
    assert callback.last.active_units == 0
    # it stopped, and on the logged key (a key never logged is an error: strict=True)
    assert stopping.stopped_epoch > 0 and trainer.current_epoch < 30 and stopping.strict


def test_posterior_submodules_that_cannot_be_found_are_named(tmp_path):
    from vaeloss.errors import InvalidArgumentError
    from vaeloss.integrations.taps import find_posterior

    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    with pytest.raises(InvalidArgumentError, match=r"mu=none, logvar=none\. Try CollapseCallback\(mu='NAME'"):
        find_posterior(model)
    with pytest.raises(InvalidArgumentError, match=r"but got mu='enc'\. Try one of: 0, 1\."):
        find_posterior(model, mu="enc", scale="1")


def _validate(devices):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "ddp_validate.py"
    done = subprocess.run(
        [sys.executable, str(script), str(devices)], capture_output=True, text=True, check=True, timeout=300
    )
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_gives_the_numbers_of_one():
    """``Trainer(devices=2, strategy="ddp")`` on the CPU (gloo): each process sees half the rows;
    the callback merges them, so every number equals one process's (the mutual information too:
    it is estimated on the rows in an order of their own values)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("ddp_validate", Path(__file__).parent / "ddp_validate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _, one = script.validate(1)  # here, in one process
    two = _validate(2)
    assert one["collapse/active_units"] == 2.0
    assert two == pytest.approx(one, rel=1e-12)
