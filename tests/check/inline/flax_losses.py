"""Loss of a flax VAE, for a training loop elsewhere (train.py jits and differentiates it)."""

import jax
import jax.numpy as jnp
import optax

from flax_models import VAE

model = VAE(latents=20)


def loss_fn(params, batch, rng, beta=1.0):
    recon_logits, mean, logvar = model.apply({"params": params}, batch, rng)
    rec = optax.sigmoid_binary_cross_entropy(recon_logits, batch).mean()
    kl = -0.5 * jnp.sum(1 + logvar - mean**2 - jnp.exp(logvar), axis=-1).mean()
    return rec + beta * kl, {"rec": rec, "kl": kl}
