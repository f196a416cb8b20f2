import math

import torch


def elbo_loss(x_hat, x, z, mu, sigma):
    """Squared error halved (a unit-variance Gaussian decoder) + log q(z|x) - log p(z) at the
    given sample, written out with the posterior's standard deviation; summed, per batch."""
    log_q = (-0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum()
    log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum()
    rec = 0.5 * ((x_hat - x) ** 2).sum()
    return (rec + log_q - log_p) / x.shape[0]
