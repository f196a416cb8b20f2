import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar, free_bits=0.5):
    bce = F.binary_cross_entropy(recon_x, x, reduction="none").sum(-1).mean()
    kl_per_dim = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean(0)
    kl = torch.clamp(kl_per_dim, min=free_bits).sum()
    return bce + kl
