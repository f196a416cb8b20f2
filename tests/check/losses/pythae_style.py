import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, log_var, z):
    recon_loss = F.binary_cross_entropy(
        recon_x.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1), reduction="none"
    ).sum(dim=-1)
    KLD = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=-1)
    return (recon_loss + KLD).mean(dim=0), recon_loss.mean(dim=0), KLD.mean(dim=0)
