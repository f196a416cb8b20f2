"""Effect of the KL coefficient c on a 2-D latent space (Keras 3, MNIST).

Usage: python keras_kl_weight.py --c 0.5 --epochs 40
"""

import argparse

import keras
import numpy as np
from keras import layers, ops

parser = argparse.ArgumentParser()
parser.add_argument("--c", type=float, default=0.5)
parser.add_argument("--epochs", type=int, default=40)
parser.add_argument("--batch-size", type=int, default=128)
args = parser.parse_args()

original_dim = 28 * 28
intermediate_dim = 512
latent_dim = 2

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = np.reshape(x_train, [-1, original_dim]).astype("float32") / 255


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def vae_loss(inputs, outputs, z_mean, z_log_var, c=args.c):
    reconstruction_loss = keras.losses.binary_crossentropy(inputs, outputs)
    reconstruction_loss *= original_dim
    kl_loss = 1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)
    kl_loss = ops.sum(kl_loss, axis=-1)
    kl_loss *= -0.5
    return ops.mean(reconstruction_loss + c * kl_loss)


inputs = keras.Input(shape=(original_dim,))
h = layers.Dense(intermediate_dim, activation="relu")(inputs)
z_mean = layers.Dense(latent_dim, name="z_mean")(h)
z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
z = Sampling()([z_mean, z_log_var])
encoder = keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")

for epoch in range(args.epochs):
    print("epoch", epoch)
