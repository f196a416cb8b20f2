import torch
from torch import nn


class GaussianVAELoss(nn.Module):
    """Summed squared error + beta * summed KL, averaged over the batch."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, recon, x, mu, logvar):
        mse = ((recon - x) ** 2).sum()
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (mse + self.beta * kld) / x.size(0)
