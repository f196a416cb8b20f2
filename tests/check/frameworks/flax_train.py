# Copyright 2024 The Flax Authors (after examples/vae/train.py).
"""Training and evaluation logic."""

import jax
import jax.numpy as jnp
from absl import logging
from flax import linen as nn


@jax.vmap
def kl_divergence(mean, logvar):
    return -0.5 * jnp.sum(1 + logvar - jnp.square(mean) - jnp.exp(logvar))


@jax.vmap
def binary_cross_entropy_with_logits(logits, labels):
    logits = nn.log_sigmoid(logits)
    return -jnp.sum(labels * logits + (1.0 - labels) * jnp.log(-jnp.expm1(logits)))


def compute_metrics(recon_x, x, mean, logvar):
    bce_loss = binary_cross_entropy_with_logits(recon_x, x).mean()
    kld_loss = kl_divergence(mean, logvar).mean()
    return {"bce": bce_loss, "kld": kld_loss, "loss": bce_loss + kld_loss}


def train_and_evaluate(config):
    rng = jax.random.key(0)
    logging.info("Initializing model.")
    for epoch in range(config.num_epochs):
        logging.info("eval epoch: %d", epoch + 1)
