import torch
import torch.nn.functional as F


def ae_mse_loss(recon_x, x, mu, logvar):
    return F.mse_loss(recon_x, x, reduction="sum")


def KLD(recon_x, x, mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def reconstruction_loss(recon_x, x, mu, logvar):
    return F.binary_cross_entropy(recon_x, x, reduction="sum")


def vae_loss(recon_x, x, mu, logvar):
    return reconstruction_loss(recon_x, x, mu, logvar) + KLD(recon_x, x, mu, logvar)
