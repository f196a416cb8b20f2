import torch.nn.functional as F

from .utils import kld


def vae_loss(recon, x, mu, logvar, beta=4.0):
    rec = F.mse_loss(recon, x, reduction="none").sum(dim=1)
    return (rec + beta * kld(mu, logvar)).mean()
