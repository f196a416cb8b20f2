"""A VAE on binarised MNIST in Flax (linen) and optax: the loss is a closure of the jitted
``train_step``, differentiated by ``jax.value_and_grad(..., has_aux=True)``.

Usage: python flax_train_step.py --kl-weight 0.5
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax.training import train_state


class Encoder(nn.Module):
    latents: int

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(500, name="fc1")(x))
        mean_x = nn.Dense(self.latents, name="fc2_mean")(x)
        logvar_x = nn.Dense(self.latents, name="fc2_logvar")(x)
        return mean_x, logvar_x


class Decoder(nn.Module):
    @nn.compact
    def __call__(self, z):
        z = nn.relu(nn.Dense(500, name="fc1")(z))
        return nn.Dense(784, name="fc2")(z)


class VAE(nn.Module):
    latents: int = 20

    def setup(self):
        self.encoder = Encoder(self.latents)
        self.decoder = Decoder()

    def __call__(self, x, z_rng):
        mean, logvar = self.encoder(x)
        std = jnp.exp(0.5 * logvar)
        z = mean + std * jax.random.normal(z_rng, logvar.shape)
        return self.decoder(z), mean, logvar


def create_train_state(rng, learning_rate, latents):
    model = VAE(latents=latents)
    params = model.init(rng, jnp.ones((1, 784)), rng)["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(learning_rate))


def train_step(state, batch, z_rng, kl_weight=0.5):
    def loss_fn(params):
        logits, mean, logvar = state.apply_fn({"params": params}, batch, z_rng)
        rec = optax.sigmoid_binary_cross_entropy(logits, batch).sum(axis=-1).mean()
        kld = -0.5 * jnp.mean(jnp.sum(1 + logvar - jnp.square(mean) - jnp.exp(logvar), axis=-1))
        loss = rec + kl_weight * kld
        return loss, (rec, kld)

    (loss, (rec, kld)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads=grads), loss, rec, kld


train_step = jax.jit(train_step, static_argnames="kl_weight")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--kl-weight", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    rng = jax.random.key(0)
    state = create_train_state(rng, 1e-3, 20)
    images = (np.random.default_rng(0).random((1024, 784)) > 0.5).astype(np.float32)
    for epoch in range(args.epochs):
        for i in range(0, len(images), 128):
            rng, key = jax.random.split(rng)
            state, loss, rec, kld = train_step(state, images[i : i + 128], key, args.kl_weight)
        print(f"epoch {epoch}: loss {loss:.2f} (rec {rec:.2f}, kl {kld:.2f})")
