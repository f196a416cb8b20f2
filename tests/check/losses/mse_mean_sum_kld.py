import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar):
    mse = F.mse_loss(recon_x, x)
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return mse + kld
