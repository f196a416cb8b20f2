import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar, anneal=0.2):
    """Mult-VAE (Liang et al. 2018): a multinomial likelihood over the items."""
    BCE = -torch.mean(torch.sum(F.log_softmax(recon_x, 1) * x, -1))
    KLD = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
    return BCE + anneal * KLD
