import torch
import torch.nn.functional as F


def make_vae_loss(beta=1.0):
    """A factory: returns the loss for a KL weight."""

    def loss(recon_x, x, mu, logvar):
        bce = F.binary_cross_entropy(recon_x, x, reduction="sum") / x.shape[0]
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
        return bce + beta * kld

    return loss
