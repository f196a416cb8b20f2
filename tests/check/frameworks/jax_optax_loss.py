import jax.numpy as jnp
import optax

LEARNING_RATE = 1e-3


def loss_fn(logits, batch, mu, log_var):
    recon = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, batch))
    kl = -0.5 * jnp.sum(1 + log_var - mu**2 - jnp.exp(log_var), axis=-1)
    return recon + jnp.mean(kl)


optimizer = optax.adam(LEARNING_RATE)
