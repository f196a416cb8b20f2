"""A single-sample Monte-Carlo KL and a learned decoder scale (log_scale), as in many
tutorials."""

import math

import torch
from torch import nn
from torch.distributions import Normal


class MCVAE(nn.Module):
    def __init__(self, input_dim=784, latent_dim=20, scale=0.5):
        super().__init__()
        self.enc = nn.Linear(input_dim, 64)
        self.fc_mu = nn.Linear(64, latent_dim)
        self.fc_var = nn.Linear(64, latent_dim)
        self.dec = nn.Linear(latent_dim, input_dim)
        self.log_scale = nn.Parameter(torch.tensor([math.log(scale)]))

    def training_step(self, batch, batch_idx):
        x, _ = batch
        h = torch.relu(self.enc(x))
        mu, log_var = self.fc_mu(h), self.fc_var(h)
        std = torch.exp(log_var / 2)
        q = Normal(mu, std)
        z = q.rsample()
        x_hat = self.dec(z)
        log_pxz = Normal(x_hat, torch.exp(self.log_scale)).log_prob(x).sum(dim=1)
        kl = (q.log_prob(z) - Normal(torch.zeros_like(mu), torch.ones_like(std)).log_prob(z)).sum(-1)
        return (kl - log_pxz).mean()
