"""A user's VAE whose decoder is slow in proportion to the rows it decodes (as a large conv
decoder is): 0.2 ms a row, so one pass over the 359 held-out digits takes about 0.07 s and
one training step of a batch of 64 about 13 ms."""

import time

import torch
from torch import nn

SECONDS_PER_ROW = 2e-4


class SlowVAE(nn.Module):
    def __init__(self, latent_dim=4):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
        self.fc_mu, self.fc_logvar = nn.Linear(64, latent_dim), nn.Linear(64, latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, 64))

    def encode(self, x):
        h = self.enc(x.view(-1, 64))
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        time.sleep(SECONDS_PER_ROW * z.shape[:-1].numel())
        return torch.sigmoid(self.dec(z))
