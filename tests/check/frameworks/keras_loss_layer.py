"""A Keras 3 loss layer that keeps the encoder's outputs on itself (as many tutorials do)."""
import keras
from keras import layers, ops


class VAELossLayer(layers.Layer):
    def __init__(self, original_dim=784, **kwargs):
        super().__init__(**kwargs)
        self.original_dim = original_dim
        self.z_mean = None
        self.z_log_var = None

    def vae_loss(self, x, x_decoded_mean):
        xent = self.original_dim * keras.losses.binary_crossentropy(x, x_decoded_mean)
        kl = -0.5 * ops.sum(1 + self.z_log_var - ops.square(self.z_mean) - ops.exp(self.z_log_var), axis=-1)
        return ops.mean(xent + kl)

    def call(self, inputs):
        x, x_decoded_mean, self.z_mean, self.z_log_var = inputs
        self.add_loss(self.vae_loss(x, x_decoded_mean))
        return x_decoded_mean
