"""A VAE whose forward stores its loss on ``self.loss`` and returns only samples: S draws of the
decoder's means as images, [S, B, 1, side, side] (the shape of an importance-sampling notebook)."""

import math

import torch
import torch.nn.functional as F
from torch import nn


class SampledVAE(nn.Module):
    def __init__(self, input_dim=784, latent_dim=20, n_samples=3, beta=2.0):
        super().__init__()
        self.side = math.isqrt(input_dim)
        self.n_samples, self.beta = n_samples, beta
        self.fc1 = nn.Linear(input_dim, 128)
        self.fc_mu = nn.Linear(128, latent_dim)
        self.fc_logvar = nn.Linear(128, latent_dim)
        self.fc3 = nn.Linear(latent_dim, 128)
        self.dec = nn.Linear(128, input_dim)
        self.loss = None

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        eps = torch.randn(self.n_samples, *mu.shape, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # [S, B, k]
        logits = self.dec(F.relu(self.fc3(z)))  # [S, B, D]
        rec = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        rec = self.reduce(rec.sum(-1))  # summed over pixels; over the S draws and the batch:
        kl = (-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)).mean()
        self.loss = rec + self.beta * kl
        return torch.sigmoid(logits).view(self.n_samples, -1, 1, self.side, self.side)

    def reduce(self, rec):
        return rec.mean()  # averaged over the draws and the batch


class SummedDrawsVAE(SampledVAE):
    def reduce(self, rec):
        return rec.sum(0).mean()  # summed over the S draws, averaged over the batch
