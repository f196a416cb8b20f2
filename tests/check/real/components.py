import torch
import torch.nn.functional as F


def loss_fn(recon_x, x, mu, logvar):
    """Returns the terms; the training loop adds them."""
    mse = F.mse_loss(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return mse, kld
