import torch
import torch.nn.functional as F


def beta_vae_loss(recon_x, x, mu, logvar, beta=4.0):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum") / x.shape[0]
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
    return bce + beta * kld
