import torch
from torch.distributions import ContinuousBernoulli


def vae_loss(recon_x, x, mu, logvar):
    nll = -ContinuousBernoulli(probs=recon_x).log_prob(x).sum(-1)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
    return (nll + kl).mean()
