"""Overhead of the Lightning collapse callback on an epoch of the pytorch/examples-size VAE
(784-400-20) on MNIST-size synthetic data (60,000 training and 10,000 validation rows of 784):
the time of one fit epoch (training and validation) with and without the callback, interleaved,
median of 3 each, in one run (goal: at most 5% more). Rows: no logger, idle; a TensorBoard
logger (the callback then also draws its KL bar chart and reconstruction grid), idle; no logger
beside one busy process (started here, :func:`contention.busy`).
Run: python bench/callback_overhead.py [--rows 60000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from contention import busy, stop_busy  # bench/contention.py (this script's folder)
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vaeloss.integrations.lightning import CollapseCallback


class ExamplesVAE(pl.LightningModule):
    """pytorch/examples' VAE as a LightningModule."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        (x,) = batch
        recon, mu, logvar = self(x)
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._loss(batch)

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def epoch_seconds(rows: int, with_callback: bool, tensorboard: bool = False) -> float:
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(torch.rand(rows, 784, generator=g)), batch_size=128, shuffle=True)
    val = DataLoader(TensorDataset(torch.rand(rows // 6, 784, generator=g)), batch_size=1000)
    callbacks = [CollapseCallback()] if with_callback else []
    logs = tempfile.TemporaryDirectory()
    logger = pl.loggers.TensorBoardLogger(logs.name) if tensorboard else False
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", logger=logger, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, callbacks=callbacks,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(ExamplesVAE(), train, val)
    seconds = time.perf_counter() - start
    logs.cleanup()
    return seconds


def overhead(rows: int, *, tensorboard: bool = False, load: int = 0) -> tuple[float, float]:
    """Median seconds of an epoch without and with the callback (3 each, interleaved: drift of
    the machine hits both alike), beside ``load`` busy processes."""
    procs = busy(load, limit=3600)
    try:
        plain, callback = [], []
        for _ in range(3):
            plain.append(epoch_seconds(rows, False, tensorboard))
            callback.append(epoch_seconds(rows, True, tensorboard))
    finally:
        stop_busy(procs)
    return statistics.median(plain), statistics.median(callback)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=60_000)
    args = parser.parse_args()
    print(f"{'rows':>7} {'logger':>11} {'busy':>4} {'plain s':>8} {'callback s':>11} {'overhead':>9}")
    for tensorboard, load in ((False, 0), (True, 0), (False, 1)):
        a, b = overhead(args.rows, tensorboard=tensorboard, load=load)
        logger = "tensorboard" if tensorboard else "none"
        row = f"{args.rows:>7} {logger:>11} {load:>4} {a:>8.2f} {b:>11.2f} {100 * (b / a - 1):>8.1f}%"
        print(row, flush=True)


if __name__ == "__main__":
    main()
