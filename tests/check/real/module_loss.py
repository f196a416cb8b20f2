import torch
from torch import nn


class VAELoss(nn.Module):
    """An nn.Module whose forward is the loss; the KL weight is self.beta."""

    def __init__(self, beta=4.0):
        super().__init__()
        self.beta = beta
        self.rec = nn.MSELoss(reduction="sum")

    def forward(self, recon, target, mu, logvar):
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (self.rec(recon, target) + self.beta * kld) / target.size(0)
