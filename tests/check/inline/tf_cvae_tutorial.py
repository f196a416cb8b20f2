"""A convolutional VAE in TensorFlow, shaped like TensorFlow's CVAE tutorial: the loss is the
single-sample Monte-Carlo estimate of the ELBO, log p(x|z) + log p(z) - log q(z|x) at the z the
model samples, written out with log-densities.

Usage: python tf_cvae_tutorial.py --epochs 10
"""

import argparse
import time

import numpy as np
import tensorflow as tf


class CVAE(tf.keras.Model):
    """Convolutional variational autoencoder."""

    def __init__(self, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = tf.keras.Sequential(
            [
                tf.keras.layers.InputLayer(shape=(28, 28, 1)),
                tf.keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
                tf.keras.layers.Conv2D(64, 3, strides=2, activation="relu"),
                tf.keras.layers.Flatten(),
                tf.keras.layers.Dense(latent_dim + latent_dim),  # no activation
            ]
        )
        self.decoder = tf.keras.Sequential(
            [
                tf.keras.layers.InputLayer(shape=(latent_dim,)),
                tf.keras.layers.Dense(7 * 7 * 32, activation="relu"),
                tf.keras.layers.Reshape((7, 7, 32)),
                tf.keras.layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),
                tf.keras.layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
                tf.keras.layers.Conv2DTranspose(1, 3, strides=1, padding="same"),  # logits
            ]
        )

    def encode(self, x):
        mean, logvar = tf.split(self.encoder(x), num_or_size_splits=2, axis=1)
        return mean, logvar

    def reparameterize(self, mean, logvar):
        eps = tf.random.normal(shape=tf.shape(mean))
        return eps * tf.exp(logvar * 0.5) + mean

    def decode(self, z, apply_sigmoid=False):
        logits = self.decoder(z)
        return tf.sigmoid(logits) if apply_sigmoid else logits


optimizer = tf.keras.optimizers.Adam(1e-4)


def log_normal_pdf(sample, mean, logvar, raxis=1):
    log2pi = tf.math.log(2.0 * np.pi)
    return tf.reduce_sum(-0.5 * ((sample - mean) ** 2.0 * tf.exp(-logvar) + logvar + log2pi), axis=raxis)


def compute_loss(model, x):
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar)
    x_logit = model.decode(z)
    cross_ent = tf.nn.sigmoid_cross_entropy_with_logits(logits=x_logit, labels=x)
    logpx_z = -tf.reduce_sum(cross_ent, axis=[1, 2, 3])
    logpz = log_normal_pdf(z, 0.0, 0.0)
    logqz_x = log_normal_pdf(z, mean, logvar)
    return -tf.reduce_mean(logpx_z + logpz - logqz_x)


@tf.function
def train_step(model, x, optimizer):
    """One step of training: the loss, its gradients, the update."""
    with tf.GradientTape() as tape:
        loss = compute_loss(model, x)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    (train_images, _), _ = tf.keras.datasets.mnist.load_data()
    train_images = (train_images.reshape(-1, 28, 28, 1) / 255.0 > 0.5).astype("float32")
    train_dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(60000).batch(32)
    model = CVAE(latent_dim=2)
    for epoch in range(1, args.epochs + 1):
        start = time.time()
        for train_x in train_dataset:
            train_step(model, train_x, optimizer)
        print(f"epoch {epoch}: {time.time() - start:.1f} s")
