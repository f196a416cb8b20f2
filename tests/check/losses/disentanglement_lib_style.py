import torch
import torch.nn.functional as F


def compute_loss(logits, features, z_mean, z_logvar, beta=1.0):
    reconstruction_loss = F.binary_cross_entropy_with_logits(logits, features, reduction="none")
    reconstruction_loss = reconstruction_loss.sum(dim=1).mean()
    kl_loss = torch.mean(0.5 * torch.sum(z_mean.square() + z_logvar.exp() - z_logvar - 1, dim=1))
    return reconstruction_loss + beta * kl_loss
