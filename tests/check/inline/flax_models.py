"""The flax module of flax_losses.py (a sibling module, imported as a training package would)."""

import jax
import jax.numpy as jnp
from flax import linen as nn


class VAE(nn.Module):
    latents: int = 20

    @nn.compact
    def __call__(self, x, rng):
        h = nn.relu(nn.Dense(400)(x))
        mean, logvar = nn.Dense(self.latents)(h), nn.Dense(self.latents)(h)
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, logvar.shape)
        return nn.Dense(784)(nn.relu(nn.Dense(400)(z))), mean, logvar
