import torch
import torch.nn.functional as F
from torch.distributions import Normal


def loss_function(recon_x, x, mu, logvar):
    """A single-sample Monte-Carlo KL on a sampled z."""
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.rsample()
    kl = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum()
    return F.binary_cross_entropy(recon_x, x, reduction="sum") + kl
