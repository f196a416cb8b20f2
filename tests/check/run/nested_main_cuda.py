"""A loss nested in ``main(args)``, the data set and model moved to a hard-coded CUDA device,
loader workers, batch size 256 and beta 4 from argparse under the main guard."""

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms


class VAE(nn.Module):
    def __init__(self, z_dim=10):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU())
        self.mu = nn.Linear(512, z_dim)
        self.logvar = nn.Linear(512, z_dim)
        self.dec = nn.Sequential(nn.Linear(z_dim, 512), nn.ReLU(), nn.Linear(512, 784))

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


def main(args):
    def loss_fn(logits, x, mu, logvar):
        rec = F.binary_cross_entropy_with_logits(logits, x.view(x.size(0), -1), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (rec + args.beta * kld) / x.size(0)

    data = datasets.MNIST(args.root, train=True, download=True, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True, num_workers=2)
    model = VAE(args.z_dim).to("cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        for x, _ in loader:
            x = x.to("cuda")
            logits, mu, logvar = model(x)
            loss = loss_fn(logits, x, mu, logvar)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="~/datasets")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--z-dim", type=int, default=10)
    parser.add_argument("--beta", type=float, default=4.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=50)
    main(parser.parse_args())
