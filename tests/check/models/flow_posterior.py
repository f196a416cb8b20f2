"""A planar-flow posterior: the KL is log q(z) - log p(z) on flowed samples, which is not the
Gaussian KL of (mu, logvar): no effective beta can be given for it."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal


class FlowVAE(nn.Module):
    def __init__(self, input_dim=784, latent_dim=20):
        super().__init__()
        self.enc = nn.Linear(input_dim, 64)
        self.fc_mu = nn.Linear(64, latent_dim)
        self.fc_logvar = nn.Linear(64, latent_dim)
        self.u = nn.Parameter(0.5 * torch.ones(latent_dim))
        self.w = nn.Parameter(torch.ones(latent_dim))
        self.dec = nn.Linear(latent_dim, input_dim)

    def training_step(self, batch, batch_idx):
        x, _ = batch
        h = torch.relu(self.enc(x))
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        q0 = Normal(mu, torch.exp(0.5 * logvar))
        z0 = q0.rsample()
        a = torch.tanh(z0 @ self.w)
        z = z0 + self.u * a.unsqueeze(-1)
        log_det = torch.log((1 + (1 - a**2) * (self.u @ self.w)).abs())
        log_q = q0.log_prob(z0).sum(-1) - log_det
        log_p = Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).sum(-1)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(-1)
        return (rec + log_q - log_p).mean()
