"""A Keras 3 VAE that overrides Model.compute_loss(x, y, y_pred, ...), its call returning
(z_mean, z_log_var, reconstruction); the BCE of each pixel (a channel axis added, since Keras
averages over the last axis) summed, the KL summed, both averaged over the batch, the KL times
self.beta."""

import keras
from keras import layers, ops


class VAE(keras.Model):
    def __init__(self, latent_dim=2, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = beta
        self.enc = layers.Dense(64, activation="relu")
        self.z_mean_layer = layers.Dense(latent_dim)
        self.z_log_var_layer = layers.Dense(latent_dim)
        self.dec = layers.Dense(784, activation="sigmoid")

    def call(self, x):
        h = self.enc(x)
        z_mean, z_log_var = self.z_mean_layer(h), self.z_log_var_layer(h)
        z = z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean))
        return z_mean, z_log_var, self.dec(z)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        z_mean, z_log_var, reconstruction = y_pred
        rec = ops.mean(ops.sum(keras.losses.binary_crossentropy(x[..., None], reconstruction[..., None]), axis=1))
        kl = ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))
        return rec + self.beta * kl
