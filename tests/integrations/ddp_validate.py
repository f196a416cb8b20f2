"""Validation of one seeded digits VAE with the Lightning collapse callback, on 1 or 2 CPU
processes (DDP, gloo): prints the logged collapse metrics as JSON (rank 0). Run by
test_lightning.py: python ddp_validate.py DEVICES."""

import json
import sys

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vaeloss.engine.data import load_dataset
from vaeloss.integrations.lightning import CollapseCallback


class Encoder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Sequential(nn.Linear(64, 32), nn.ReLU())
        self.fc_mu, self.fc_logvar = nn.Linear(32, 4), nn.Linear(32, 4)
        with torch.no_grad():
            self.fc_mu.weight[:2] *= 20  # two dims whose means vary with the input: active

    def validation_step(self, batch, batch_idx):
        (x,) = batch
        h = self.enc(x)
        self.log("val_kl", (self.fc_mu(h) ** 2).sum(), sync_dist=True)
        self.fc_logvar(h)


def validate(devices: int) -> tuple[int, dict[str, float]]:
    """(this process's rank, the logged collapse metrics)."""
    rows = torch.as_tensor(load_dataset("digits").x_val[:358])  # even: no row padded by DDP
    trainer = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
        logger=False, callbacks=[CollapseCallback()], enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    [metrics] = trainer.validate(Encoder(), DataLoader(TensorDataset(rows), batch_size=50), verbose=False)
    return trainer.global_rank, {k: float(v) for k, v in metrics.items() if k.startswith("collapse/")}


if __name__ == "__main__":
    rank, result = validate(int(sys.argv[1]))
    if rank == 0:
        print("RESULT " + json.dumps(result))
