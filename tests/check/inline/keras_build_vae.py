"""Effect of the KL coefficient c on a VAE's latent space (MNIST, 2-D latent, Keras).

python kl_coefficient.py  # trains one model per c and saves the figures
"""

import numpy as np
import matplotlib.pyplot as plt
import keras
from keras import layers, ops
from keras.datasets import mnist

original_dim = 784
intermediate_dim = 512
latent_dim = 2
batch_size = 128
epochs = 40


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def build_vae(c):
    inputs = keras.Input(shape=(original_dim,), name="encoder_input")
    h = layers.Dense(intermediate_dim, activation="relu")(inputs)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,), name="z_sampling")
    x = layers.Dense(intermediate_dim, activation="relu")(latent_inputs)
    decoded = layers.Dense(original_dim, activation="sigmoid")(x)
    decoder = keras.Model(latent_inputs, decoded, name="decoder")

    outputs = decoder(encoder(inputs)[2])
    vae = keras.Model(inputs, outputs, name="vae_mlp")

    reconstruction_loss = keras.losses.binary_crossentropy(inputs, outputs) * original_dim
    kl_loss = 1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)
    kl_loss = ops.sum(kl_loss, axis=-1) * -0.5
    vae_loss = ops.mean(reconstruction_loss + c * kl_loss)
    vae.add_loss(vae_loss)
    vae.compile(optimizer="adam")
    return vae, encoder, decoder


if __name__ == "__main__":
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train.reshape(-1, original_dim).astype("float32") / 255
    x_test = x_test.reshape(-1, original_dim).astype("float32") / 255
    for c in [0, 0.02, 0.1, 0.5, 1, 2, 10, 20]:
        vae, encoder, decoder = build_vae(c)
        vae.fit(x_train, epochs=epochs, batch_size=batch_size, validation_data=(x_test, None))
        z_mean, _, _ = encoder.predict(x_test, batch_size=batch_size)
        plt.figure(figsize=(6, 6))
        plt.scatter(z_mean[:, 0], z_mean[:, 1], c=y_test)
        plt.savefig(f"latent_c{c}.png")
