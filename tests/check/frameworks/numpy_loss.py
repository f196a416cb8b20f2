"""A NumPy reference of the loss, to compare against the training code."""

import numpy as np


def vae_loss(x_hat, x, mu, logvar):
    sse = np.sum((x - x_hat) ** 2, axis=1)
    kld = -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar), axis=1)
    return float(np.mean(sse + kld))


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    print(vae_loss(rng.random((4, 8)), rng.random((4, 8)), rng.normal(size=(4, 2)), np.zeros((4, 2))))
