"""A training function whose batch has a name no loss uses for its data (``xb``): the loop's
other names (reconstructed, mu, log_var) say their roles, the batch takes the one left."""

import torch
import torch.nn.functional as F


def train_vae(model, train_loader, optimizer, num_epochs=10):
    model.train()
    for epoch in range(num_epochs):
        for xb, _ in train_loader:
            optimizer.zero_grad()
            reconstructed, mu, log_var = model(xb)
            kld = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
            loss = F.mse_loss(reconstructed, xb, reduction="sum") + kld
            loss.backward()
            optimizer.step()
