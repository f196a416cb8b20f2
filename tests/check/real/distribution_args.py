import torch
from torch.distributions import Normal, kl_divergence


def elbo_loss(x, px, qz):
    """Decoder and posterior passed as torch.distributions objects."""
    log_px = px.log_prob(x).sum(dim=-1)
    prior = Normal(torch.zeros_like(qz.loc), torch.ones_like(qz.scale))
    kl = kl_divergence(qz, prior).sum(dim=-1)
    return -(log_px - 0.5 * kl).mean()
