"""A VAE in plain NumPy with a hand-written backward pass (the shape of "VAE from scratch" course
code): the loss is computed in the loop of VAE.train() and only logged; the gradients are the
class's own."""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class VAE:
    def __init__(self, input_dim=784, hidden=256, latent_dim=20, beta=1.0, seed=0):
        rng = np.random.default_rng(seed)
        self.W1 = rng.normal(0, 0.01, (input_dim, hidden))
        self.W_mu = rng.normal(0, 0.01, (hidden, latent_dim))
        self.W_lv = rng.normal(0, 0.01, (hidden, latent_dim))
        self.W2 = rng.normal(0, 0.01, (latent_dim, hidden))
        self.W3 = rng.normal(0, 0.01, (hidden, input_dim))
        self.beta = beta
        self.rng = rng

    def forward(self, x):
        h = np.maximum(0, x @ self.W1)
        mu, logvar = h @ self.W_mu, h @ self.W_lv
        eps = self.rng.standard_normal(mu.shape)
        z = mu + np.exp(0.5 * logvar) * eps
        h2 = np.maximum(0, z @ self.W2)
        x_hat = sigmoid(h2 @ self.W3)
        self.cache = (x, h, eps, z, h2)
        return x_hat, mu, logvar

    def backward(self, x_hat, mu, logvar, lr):
        x, h, eps, z, h2 = self.cache
        n = x.shape[0]
        d_out = (x_hat - x) / n
        d_W3 = h2.T @ d_out
        d_h2 = (d_out @ self.W3.T) * (h2 > 0)
        d_z = d_h2 @ self.W2.T
        d_mu = d_z + self.beta * mu / n
        d_lv = d_z * eps * 0.5 * np.exp(0.5 * logvar) + self.beta * 0.5 * (np.exp(logvar) - 1) / n
        d_h = (d_mu @ self.W_mu.T + d_lv @ self.W_lv.T) * (h > 0)
        self.W3 -= lr * d_W3
        self.W2 -= lr * (z.T @ d_h2)
        self.W_mu -= lr * (h.T @ d_mu)
        self.W_lv -= lr * (h.T @ d_lv)
        self.W1 -= lr * (x.T @ d_h)

    def train(self, X, epochs=10, batch_size=100, lr=1e-3):
        history = []
        for epoch in range(epochs):
            for i in range(0, len(X), batch_size):
                x = X[i : i + batch_size]
                x_hat, mu, logvar = self.forward(x)
                bce = -np.sum(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)) / x.shape[0]
                kl = -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar)) / x.shape[0]
                loss = bce + self.beta * kl
                self.backward(x_hat, mu, logvar, lr)
                history.append(loss)
            print(f"epoch {epoch}: loss {np.mean(history[-10:]):.3f}")
        return history


if __name__ == "__main__":
    X = (np.random.default_rng(1).random((1000, 784)) > 0.5).astype(float)
    VAE(beta=4.0).train(X)
