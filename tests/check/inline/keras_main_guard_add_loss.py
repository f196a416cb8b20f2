"""Variational autoencoder on MNIST, Keras functional API (the shape of the Keras 2.2 example:
the model is built at the top level, the loss under the main guard and passed to add_loss).

Usage: python keras_main_guard_add_loss.py [--mse] [--weights vae_mlp.h5]
"""

from __future__ import absolute_import, division, print_function

import argparse
import os

import numpy as np
from keras import backend as K
from keras.datasets import mnist
from keras.layers import Dense, Input, Lambda
from keras.losses import binary_crossentropy, mse
from keras.models import Model


def sampling(args):
    """Reparameterization trick by sampling from an isotropic unit Gaussian."""
    z_mean, z_log_var = args
    batch = K.shape(z_mean)[0]
    dim = K.int_shape(z_mean)[1]
    epsilon = K.random_normal(shape=(batch, dim))
    return z_mean + K.exp(0.5 * z_log_var) * epsilon


# network parameters
original_dim = 28 * 28
input_shape = (original_dim,)
intermediate_dim = 512
batch_size = 128
latent_dim = 2
epochs = 50

# VAE model = encoder + decoder
inputs = Input(shape=input_shape, name="encoder_input")
h = Dense(intermediate_dim, activation="relu")(inputs)
z_mean = Dense(latent_dim, name="z_mean")(h)
z_log_var = Dense(latent_dim, name="z_log_var")(h)
z = Lambda(sampling, output_shape=(latent_dim,), name="z")([z_mean, z_log_var])
encoder = Model(inputs, [z_mean, z_log_var, z], name="encoder")

latent_inputs = Input(shape=(latent_dim,), name="z_sampling")
h = Dense(intermediate_dim, activation="relu")(latent_inputs)
decoded = Dense(original_dim, activation="sigmoid")(h)
decoder = Model(latent_inputs, decoded, name="decoder")

outputs = decoder(encoder(inputs)[2])
vae = Model(inputs, outputs, name="vae_mlp")

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    help_ = "Load h5 model trained weights"
    parser.add_argument("-w", "--weights", help=help_)
    help_ = "Use mse loss instead of binary cross entropy (default)"
    parser.add_argument("-m", "--mse", help=help_, action="store_true")
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = np.reshape(x_train, [-1, original_dim]).astype("float32") / 255
    x_test = np.reshape(x_test, [-1, original_dim]).astype("float32") / 255

    # VAE loss = mse_loss or xent_loss + kl_loss
    if args.mse:
        reconstruction_loss = mse(inputs, outputs)
    else:
        reconstruction_loss = binary_crossentropy(inputs, outputs)

    reconstruction_loss *= original_dim
    kl_loss = 1 + z_log_var - K.square(z_mean) - K.exp(z_log_var)
    kl_loss = K.sum(kl_loss, axis=-1)
    kl_loss *= -0.5
    vae_loss = K.mean(reconstruction_loss + kl_loss)
    vae.add_loss(vae_loss)
    vae.compile(optimizer="adam")
    vae.summary()

    if args.weights:
        vae.load_weights(args.weights)
    else:
        vae.fit(x_train, epochs=epochs, batch_size=batch_size, validation_data=(x_test, None))
        vae.save_weights("vae_mlp_mnist.h5")
