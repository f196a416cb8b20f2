import torch
import torch.nn.functional as F
from torch.distributions import Normal


def loss_function(recon_x, x, mu, logvar, z):
    """The negative ELBO with a one-sample Monte-Carlo KL at the z the model sampled (its
    forward returns recon_x, mu, logvar, z)."""
    std = torch.exp(0.5 * logvar)
    log_qz = Normal(mu, std).log_prob(z).sum(dim=-1)
    log_pz = Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).sum(dim=-1)
    bce = F.binary_cross_entropy(recon_x, x, reduction="none").sum(dim=-1)
    return (bce + log_qz - log_pz).mean()
