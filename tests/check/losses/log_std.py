import torch
import torch.nn.functional as F


def vae_loss(recon, x, mu, log_std):
    rec = F.binary_cross_entropy(recon, x, reduction="none").sum(-1)
    kl = 0.5 * torch.sum(mu**2 + torch.exp(2 * log_std) - 1 - 2 * log_std, dim=-1)
    return (rec + kl).mean()
