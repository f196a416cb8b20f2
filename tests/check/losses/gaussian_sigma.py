import torch
from torch.distributions import Normal


def vae_loss(x_mean, x, mu, logvar):
    nll = -Normal(x_mean, 0.1).log_prob(x).sum(-1)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
    return (nll + kl).mean()
