"""The reconstruction grid of the Lightning callback (tests of integrations/reconstructions.py):
which output is the reconstruction, how images are laid out and shown, and a real ``Trainer``
with a module that needs ``reconstruct=``."""

import importlib
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from vaeloss.integrations.reconstructions import (
    ReconstructionTap,
    displayable,
    find_reconstruction,
    image_layout,
    reconstruction_figure,
)

X = torch.rand(4, 1, 2, 2)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param((X + 1, torch.zeros(4, 2)), X + 1, id="tuple-same-shape"),
        pytest.param({"mu": torch.zeros(4, 2), "recon": (X + 2).reshape(4, 4)}, X + 2, id="dict-flat"),
        pytest.param([torch.zeros(4, 4, dtype=torch.long), X + 3], X + 3, id="integer-skipped"),
        pytest.param(((torch.zeros(4, 2), X + 4), torch.zeros(4)), X + 4, id="nested"),
        pytest.param((torch.zeros(4, 2), torch.zeros(4, 2)), None, id="none-shaped-like-x"),
        pytest.param("text", None, id="no-tensor"),
    ],
)
def test_the_reconstruction_is_the_output_shaped_like_the_input(output, expected):
    actual = find_reconstruction(X, output)
    assert (actual is None) if expected is None else torch.equal(actual, expected)


def test_channels_last_images_are_laid_out_channels_first():
    x = torch.arange(2 * 4 * 4 * 3, dtype=torch.float64).reshape(2, 4, 4, 3)
    flat, shape = image_layout(x)
    assert shape == (3, 4, 4)
    assert flat.reshape(2, 3, 4, 4)[1, 2, 3, 0] == x[1, 3, 0, 2]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((5, 64), (1, 8, 8)), ((5, 3072), (3, 32, 32)), ((5, 1, 28, 28), (1, 28, 28)), ((5, 9, 9), (9, 9))],
    ids=["flat-8x8", "flat-rgb", "nchw", "nhw"],
)
def test_image_shapes(shape, expected):
    assert image_layout(torch.zeros(shape))[1] == expected


def test_vectors_are_not_images():
    assert (
        image_layout(torch.zeros(5, 10)) is None
        and reconstruction_figure(torch.zeros(2, 10), torch.zeros(2, 10), "t") is None
    )


def test_logits_are_shown_through_a_sigmoid_and_values_as_they_are():
    x = torch.tensor([[0.0, 0.5, 1.0]])
    logits = torch.tensor([[-3.0, 0.0, 3.0]])
    _, shown, how = displayable(x, logits)
    assert how == "logits"
    np.testing.assert_allclose(shown, torch.sigmoid(logits.double()).numpy())
    _, shown, how = displayable(x, torch.tensor([[-0.1, 0.4, 1.2]]))
    assert how == "values"
    np.testing.assert_allclose(shown, [[0.0, 0.4, 1.0]], rtol=1e-6)  # clipped


def test_data_outside_the_unit_range_are_shown_on_the_inputs_scale():
    shown_x, shown, how = displayable(torch.tensor([[-2.0, 0.0, 2.0]]), torch.tensor([[-1.0, 0.0, 4.0]]))
    assert how == "values"
    np.testing.assert_allclose(shown_x, [[0.0, 0.5, 1.0]], rtol=1e-9)
    np.testing.assert_allclose(shown, [[0.25, 0.5, 1.0]], rtol=1e-9)


def test_the_figure_holds_the_inputs_over_the_reconstructions():
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0], [1.0, 1.0, 0.0, 0.0]]).reshape(2, 1, 2, 2)
    x_hat = torch.full((2, 4), 6.0)  # logits: sigmoid(6) = 0.9975
    fig = reconstruction_figure(x, x_hat, "epoch 3")
    assert fig._suptitle.get_text() == "epoch 3 (sigmoid of the outputs: they look like logits)"
    top, bottom = (np.asarray(ax.images[0].get_array()) for ax in fig.axes)
    # two 2x2 images side by side, each followed by a column and a row of white (1.0)
    expected_top = [[0.0, 0.25, 1.0, 1.0, 1.0, 1.0], [0.5, 1.0, 1.0, 0.0, 0.0, 1.0], [1.0] * 6]
    np.testing.assert_allclose(top, expected_top)
    s = 1 / (1 + np.exp(-6.0))
    np.testing.assert_allclose(bottom[:2, [0, 1, 3, 4]], np.full((2, 4), s))


def test_the_tap_keeps_the_first_call_after_arming_only():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 4))
    tap = ReconstructionTap(n=3)
    tap.arm(model)
    first, second = torch.rand(5, 4), torch.rand(5, 4)
    out = model(first)
    model(second)
    assert torch.equal(tap.pair[0], first[:3]) and torch.equal(tap.pair[1], out[:3].detach())
    tap.remove()
    assert not model._forward_hooks


class _NoReconstruction(nn.Module):
    """A VAE whose forward gives only the posterior (the decoder is called in the step)."""

    def __init__(self, pl):
        super().__init__()
        self.enc, self.fc_mu, self.fc_logvar, self.dec = (
            nn.Linear(64, 16),
            nn.Linear(16, 2),
            nn.Linear(16, 2),
            nn.Linear(2, 64),
        )

    def forward(self, x):
        h = torch.relu(self.enc(x))
        return self.fc_mu(h), self.fc_logvar(h)


def _fit(tmp_path, **options):
    pl = importlib.import_module("lightning.pytorch")
    from torch.utils.data import DataLoader, TensorDataset

    from vaeloss.engine.data import load_dataset
    from vaeloss.integrations.lightning import CollapseCallback

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.vae = _NoReconstruction(pl)

        def forward(self, x):
            return self.vae(x)

        def _step(self, batch):
            (x,) = batch
            mu, logvar = self(x)
            logits = self.vae.dec(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
            rec = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
            return rec - 0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp()) / len(x)

        def training_step(self, batch, batch_idx):
            return self._step(batch)

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self._step(batch))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    digits = load_dataset("digits")
    torch.manual_seed(0)
    callback = CollapseCallback(**options)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, accelerator="cpu", devices=1, enable_progress_bar=False,
        callbacks=[callback], log_every_n_steps=1,
        logger=pl.loggers.TensorBoardLogger(str(tmp_path), name="vae", version=0),
        enable_model_summary=False, enable_checkpointing=False,
    )  # fmt: skip
    loader = DataLoader(TensorDataset(torch.as_tensor(digits.x_val[:64])), batch_size=32)
    trainer.fit(Module(), loader, loader)
    return callback


@pytest.mark.slow
def test_a_module_without_a_reconstruction_is_told_once_and_reconstruct_gives_one(tmp_path):
    pytest.importorskip("lightning")
    with pytest.warns(UserWarning, match=r"no reconstruction grid.*Try CollapseCallback\(reconstruct="):
        assert _fit(tmp_path / "a").recon.pair is None

    def reconstruct(module, batch):
        (x,) = batch
        return x, torch.sigmoid(module.vae.dec(module(x)[0]))

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="vaeloss CollapseCallback: no reconstruction grid")
        callback = _fit(tmp_path / "b", reconstruct=reconstruct)
    x, x_hat = callback.recon.pair
    assert x.shape == x_hat.shape == (8, 64) and float(x_hat.min()) > 0.0
