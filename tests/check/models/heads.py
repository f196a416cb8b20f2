"""A [B, 2k] encoder head split into mean and log-variance; and a step with distributions."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence


class HeadVAE(nn.Module):
    def __init__(self, input_dim=784, latent_dim=20):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_dim, 64), nn.ReLU(), nn.Linear(64, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, input_dim))

    def forward(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z), mu, logvar

    def training_step(self, batch, batch_idx):
        x, _ = batch
        logits, mu, logvar = self(x)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return rec / x.numel() + kld / x.shape[0]


class DistVAE(nn.Module):
    def __init__(self, input_dim=784, latent_dim=20, beta=2.0):
        super().__init__()
        self.enc = nn.Linear(input_dim, 64)
        self.fc_mu = nn.Linear(64, latent_dim)
        self.fc_std = nn.Linear(64, latent_dim)
        self.dec = nn.Linear(latent_dim, input_dim)
        self.beta = beta

    def step(self, batch):
        x = batch
        h = torch.relu(self.enc(x))
        q = Normal(self.fc_mu(h), torch.exp(self.fc_std(h)))
        z = q.rsample()
        px = Bernoulli(logits=self.dec(z))
        prior = Normal(torch.zeros_like(z), torch.ones_like(z))
        nll = -px.log_prob(x).sum(-1)
        kl = kl_divergence(q, prior).sum(-1)
        return (nll + self.beta * kl).mean()
