import torch
from torch import nn


def vae_loss(recon_x, x, mu, logvar):
    """The seed's loss with its BCE built and applied inline (an nn.BCELoss module)."""
    BCE = nn.BCELoss(reduction="sum")(recon_x, x.view(-1, 784))
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD
