"""A TensorFlow VAE loss in the style of TensorFlow's CVAE tutorial: log-densities written out
with ``tf.math.log(2. * np.pi)``, a float32 tensor, which TensorFlow will not add to float64
ones: the loss runs on float32 tensors only."""

import numpy as np
import tensorflow as tf


def log_normal_pdf(sample, mean, logvar, raxis=1):
    log2pi = tf.math.log(2.0 * np.pi)
    return tf.reduce_sum(-0.5 * ((sample - mean) ** 2.0 * tf.exp(-logvar) + logvar + log2pi), axis=raxis)


def compute_loss(x_mean, x, z_mean, z_log_var):
    logpx_z = log_normal_pdf(x, x_mean, tf.zeros_like(x_mean))  # a unit-variance Gaussian decoder
    kl = -0.5 * tf.reduce_sum(1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1)
    return -tf.reduce_mean(logpx_z - kl)
