"""A model with loss(x, kl_weight), and one whose forward returns an object with .loss."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class VAE(nn.Module):
    def __init__(self, input_dim=784, latent_dim=20):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(input_dim, 64), nn.ReLU())
        self.mean = nn.Linear(64, latent_dim)
        self.log_var = nn.Linear(64, latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, input_dim))

    def forward(self, x):
        h = self.enc(x)
        mu, log_var = self.mean(h), self.log_var(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return self.dec(z), mu, log_var

    def loss(self, x, kl_weight):
        x_hat, mu, log_var = self(x)
        rec = F.mse_loss(x_hat, x, reduction="sum") / x.shape[0]
        kld = torch.mean(-0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp(), dim=1))
        return rec + kl_weight * kld


@dataclass
class ModelOutput:
    loss: torch.Tensor
    recon_loss: torch.Tensor
    reg_loss: torch.Tensor


class PythaeLikeVAE(nn.Module):
    """forward(inputs) returns an object holding the loss (as pythae models do)."""

    def __init__(self, input_dim=784, latent_dim=20):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_dim, 64), nn.ReLU())
        self.embedding = nn.Linear(64, latent_dim)
        self.log_covariance = nn.Linear(64, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, input_dim))

    def forward(self, inputs):
        x = inputs["data"]
        h = self.encoder(x)
        mu, log_var = self.embedding(h), self.log_covariance(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        recon_x = self.decoder(z)
        recon_loss = 0.5 * F.mse_loss(recon_x, x, reduction="none").sum(dim=-1)
        kld = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=-1)
        return ModelOutput((recon_loss + kld).mean(0), recon_loss.mean(0), kld.mean(0))
