"""A JAX loss that checks its data with a Python branch on their values (fine under
``jax.grad``, where the data are concrete, but not traceable by ``jax.jit``): the BCE on logits
summed over pixels and averaged over the batch, the KL summed over everything."""

import jax
import jax.numpy as jnp


def vae_loss(logits, x, mu, logvar):
    if bool(jnp.any((x < 0) | (x > 1))):
        raise ValueError("x must be in [0, 1] for a Bernoulli likelihood")
    bce = jnp.sum(jnp.logaddexp(0.0, logits) - x * logits, axis=-1).mean()
    kld = -0.5 * jnp.sum(1 + logvar - mu**2 - jnp.exp(logvar))
    return bce + kld
