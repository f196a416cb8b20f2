"""A VAE loss in MLX (Apple's array framework), as a function of arrays: binary cross-entropy on
logits with MLX's default reduction (the mean over every element) and the KL summed over latent
dims, averaged over the batch."""

import mlx.core as mx
import mlx.nn as nn


def vae_loss(logits, x, mu, logvar):
    rec = nn.losses.binary_cross_entropy(logits, x, reduction="mean")
    kl = -0.5 * mx.sum(1 + logvar - mx.square(mu) - mx.exp(logvar), axis=-1)
    return rec + mx.mean(kl)
