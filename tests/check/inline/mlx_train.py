"""A VAE on MNIST in MLX: the loss is ``loss_fn(model, X)``, differentiated by MLX's
``nn.value_and_grad(model, loss_fn)`` (the shape of Apple's mlx-examples training scripts).

python mlx_train.py --epochs 10
"""

import argparse
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np


class VAE(nn.Module):
    def __init__(self, num_latent_dims=8, max_filters=64):
        super().__init__()
        self.enc = nn.Linear(784, max_filters)
        self.proj_mu = nn.Linear(max_filters, num_latent_dims)
        self.proj_log_var = nn.Linear(max_filters, num_latent_dims)
        self.dec1 = nn.Linear(num_latent_dims, max_filters)
        self.dec2 = nn.Linear(max_filters, 784)

    def __call__(self, x):
        h = nn.relu(self.enc(x))
        mu, logvar = self.proj_mu(h), self.proj_log_var(h)
        z = mu + mx.exp(0.5 * logvar) * mx.random.normal(mu.shape)
        return mx.sigmoid(self.dec2(nn.relu(self.dec1(z)))), mu, logvar


def loss_fn(model, X):
    X_recon, mu, logvar = model(X)
    # reconstruction: squared error summed over pixels and batch
    recon_loss = nn.losses.mse_loss(X_recon, X, reduction="sum")
    # KL divergence between the encoder's distribution and the standard normal
    kl_div = -0.5 * mx.sum(1 + logvar - mu.square() - logvar.exp())
    return recon_loss + kl_div


def train_epoch(model, data, optimizer, batch_size):
    loss_and_grad_fn = nn.value_and_grad(model, loss_fn)
    total = 0.0
    for i in range(0, len(data), batch_size):
        X = mx.array(data[i : i + batch_size])
        loss, grads = loss_and_grad_fn(model, X)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
        total += loss.item()
    return total / len(data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    images = np.random.default_rng(0).random((1024, 784)).astype(np.float32)
    model = VAE()
    optimizer = optim.AdamW(learning_rate=1e-3)
    for epoch in range(args.epochs):
        tic = time.perf_counter()
        print(f"epoch {epoch}: loss {train_epoch(model, images, optimizer, args.batch_size):.2f}")
