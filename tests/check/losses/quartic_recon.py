import torch


def loss_function(recon_x, x, mu, logvar):
    rec = ((recon_x - x) ** 4).sum()
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec + kld
