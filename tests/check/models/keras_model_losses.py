"""A convolutional VAE in Keras 3 (any backend): the sampling layer adds the KL with add_loss,
and the model's test_step reads it back from self.losses beside its reconstruction loss.

Usage: KERAS_BACKEND=torch python keras_model_losses.py --epochs 5
"""

import argparse

import keras
from keras import layers, ops

latent_dim = 2


class Sampling(layers.Layer):
    """z from (z_mean, z_log_var); its KL to the prior, averaged over the batch, added as a loss."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
        self.add_loss(ops.mean(kl))
        eps = keras.random.normal(ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def build_encoder():
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder():
    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(latent_inputs, outputs, name="decoder")


class VAE(keras.Model):
    def __init__(self, kl_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight = kl_weight
        self.encoder = build_encoder()
        self.decoder = build_decoder()

    def call(self, inputs):
        _, _, z = self.encoder(inputs)
        return self.decoder(z)

    def test_step(self, data):
        reconstruction = self(data)
        reconstruction_loss = ops.mean(
            ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
        )
        kl_loss = ops.sum(self.losses)
        total_loss = reconstruction_loss + self.kl_weight * kl_loss
        return {"loss": total_loss, "reconstruction_loss": reconstruction_loss, "kl_loss": kl_loss}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    (x_train, _), (x_test, _) = keras.datasets.mnist.load_data()
    x_train = x_train[..., None].astype("float32") / 255
    vae = VAE()
    vae.compile(optimizer=keras.optimizers.Adam())
    vae.fit(x_train, epochs=args.epochs, batch_size=128)
