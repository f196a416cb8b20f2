import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar):
    # needs [B, C, H, W] inputs: sums over channel and pixel dims
    bce = F.binary_cross_entropy(recon_x, x, reduction="none").sum(dim=(1, 2, 3))
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return (bce + kld).mean()
