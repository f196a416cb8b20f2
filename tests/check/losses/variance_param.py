import torch
import torch.nn.functional as F


def vae_loss(recon, x, mu, var):
    rec = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = 0.5 * torch.sum(mu**2 + var - 1 - torch.log(var))
    return rec + kl
