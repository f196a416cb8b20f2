import torch
from torch.distributions import Bernoulli, Normal, kl_divergence


def elbo_loss(x_probs, x, z_loc, z_scale):
    log_lik = Bernoulli(probs=x_probs).log_prob(x).sum(-1)
    prior = Normal(torch.zeros_like(z_loc), torch.ones_like(z_scale))
    kl = kl_divergence(Normal(z_loc, z_scale), prior).sum(-1)
    return (kl - log_lik).mean()
