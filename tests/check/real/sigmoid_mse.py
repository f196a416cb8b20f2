import torch
import torch.nn.functional as F


def loss_function(logits, x, mu, logvar):
    mse = F.mse_loss(torch.sigmoid(logits), x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return mse + kld
