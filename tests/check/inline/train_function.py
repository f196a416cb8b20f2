import torch
import torch.nn.functional as F


def train(model, loader, optimizer, epochs=10, beta=4.0):
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for x, _ in loader:
            x = x.view(x.size(0), -1)
            x_hat, mu, log_var = model(x)
            recon = F.mse_loss(x_hat, x, reduction="sum") / x.size(0)
            kl = -0.5 * torch.sum(1 + log_var - mu ** 2 - log_var.exp()) / x.size(0)
            loss = recon + beta * kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(epoch, total)
