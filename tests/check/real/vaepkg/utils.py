import torch


def kld(mu, logvar):
    """KL to N(0, I) per sample, summed over latent dims."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
