"""A project's entry point: the training loop lives in vae_trainer.py, the loss in vae_losses.py
(shaped like repositories whose main.py only wires a config, a model and a trainer)."""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vae_losses import GaussianVAELoss
from vae_trainer import Trainer

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=50)
parser.add_argument("--latent", type=int, default=3)
parser.add_argument("--beta", type=float, default=4.0)
args = parser.parse_args()


class VAE(nn.Module):
    def __init__(self, d=12, k=3):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, 2 * k))
        self.dec = nn.Sequential(nn.Linear(k, 32), nn.ReLU(), nn.Linear(32, d))

    def forward(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.dec(z), mu, logvar


def main():
    data = TensorDataset(torch.rand(2000, 12))
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
    model = VAE(k=args.latent)
    trainer = Trainer(model, GaussianVAELoss(beta=args.beta), loader)
    trainer.train(epochs=10)


if __name__ == "__main__":
    main()
