import torch
import torch.nn.functional as F


def vae_loss(x_logits, x, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec + kld
