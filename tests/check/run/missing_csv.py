"""A script that reads its own data from a CSV file that is not there, before its training loop."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

rows = np.loadtxt("my_measurements.csv", delimiter=",", dtype=np.float32)
x_all = torch.from_numpy(rows)


class VAE(nn.Module):
    def __init__(self, d=rows.shape[1], k=4):
        super().__init__()
        self.enc = nn.Linear(d, 2 * k)
        self.dec = nn.Linear(k, d)

    def forward(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return self.dec(mu + torch.randn_like(mu) * (0.5 * logvar).exp()), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    mse = F.mse_loss(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return mse + kld


model = VAE()
optimizer = torch.optim.Adam(model.parameters())
for x in x_all.split(64):
    recon, mu, logvar = model(x)
    loss = loss_function(recon, x, mu, logvar)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
