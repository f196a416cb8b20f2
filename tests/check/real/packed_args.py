import torch
import torch.nn.functional as F


def vae_loss(x, outputs):
    """The model's outputs packed in one tuple."""
    x_hat, mu, logvar = outputs
    rec = F.binary_cross_entropy(x_hat, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (rec + kl) / x.size(0)
