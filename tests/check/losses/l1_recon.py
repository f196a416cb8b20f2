import torch


def loss_function(recon_x, x, mu, logvar):
    l1 = (recon_x - x).abs().sum()
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return l1 + kld
