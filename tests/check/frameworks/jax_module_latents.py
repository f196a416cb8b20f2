"""A VAE in plain JAX, written as the Keras blog's script is: the encoder's outputs are
module-level arrays, and the loss of (x, x_decoded) reads them from there.

Usage: python jax_module_latents.py
"""

import jax
import jax.numpy as jnp
import numpy as np

original_dim, latent_dim, batch_size = 784, 2, 100

key = jax.random.key(0)
k1, k2, k3 = jax.random.split(key, 3)
params = {
    "enc": jax.random.normal(k1, (original_dim, 2 * latent_dim)) * 0.01,
    "dec": jax.random.normal(k2, (latent_dim, original_dim)) * 0.01,
}
x_train = (np.random.default_rng(0).random((batch_size, original_dim)) > 0.5).astype(np.float32)


def encode(params, x):
    h = x @ params["enc"]
    return h[:, :latent_dim], h[:, latent_dim:]


def decode(params, z):
    return jax.nn.sigmoid(z @ params["dec"])


z_mean, z_log_var = encode(params, x_train)
z = z_mean + jnp.exp(0.5 * z_log_var) * jax.random.normal(k3, z_mean.shape)
x_decoded = decode(params, z)


def vae_loss(x, x_decoded):
    eps = 1e-7
    p = jnp.clip(x_decoded, eps, 1 - eps)
    xent = -jnp.sum(x * jnp.log(p) + (1 - x) * jnp.log(1 - p), axis=-1)
    kl = -0.5 * jnp.mean(1 + z_log_var - jnp.square(z_mean) - jnp.exp(z_log_var), axis=-1)
    return jnp.mean(xent + kl)


if __name__ == "__main__":
    print(vae_loss(x_train, x_decoded))
