import torch
import torch.nn.functional as F


def loss_terms(recon, x, mu, log_var):
    """Returns the terms and the weight the loop puts on the KL."""
    recons_loss = F.mse_loss(recon, x)
    kld_loss = torch.mean(-0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp(), dim=1))
    return recons_loss, kld_loss, 0.00025
