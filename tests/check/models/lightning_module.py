"""A real LightningModule (lightning.LightningModule, save_hyperparameters, self.log) whose first
layer flattens 1x28x28 images and whose decoder gives them back as images."""

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


class LitVAE(L.LightningModule):
    def __init__(self, latent_dim=16, beta=1.0):
        super().__init__()
        self.save_hyperparameters()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 400), nn.ReLU())
        self.fc_mu = nn.Linear(400, latent_dim)
        self.fc_logvar = nn.Linear(400, latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim, 400), nn.ReLU(), nn.Linear(400, 784), nn.Sigmoid())

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z).view(-1, 1, 28, 28), mu, logvar

    def training_step(self, batch, batch_idx):
        x, _ = batch
        x_hat, mu, logvar = self(x)
        rec = F.binary_cross_entropy(x_hat, x, reduction="sum") / x.size(0)
        kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1))
        loss = rec + self.hparams.beta * kl
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)
