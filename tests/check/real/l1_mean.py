import torch
import torch.nn.functional as F


def loss_function(recon, x, mu, logvar):
    rec = F.l1_loss(recon, x)
    kld = torch.mean(-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
    return rec + 1e-3 * kld
