"""A conditional VAE's script: the loss is a function nested inside main(args), called in its loop."""

import argparse

import torch
from torch import nn


class VAE(nn.Module):
    def __init__(self, latent_size=2):
        super().__init__()
        self.encoder = nn.Linear(784 + 10, 2 * latent_size)
        self.decoder = nn.Sequential(nn.Linear(latent_size + 10, 784), nn.Sigmoid())

    def forward(self, x, c):
        mean, log_var = self.encoder(torch.cat([x.view(-1, 784), c], dim=-1)).chunk(2, dim=-1)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        return self.decoder(torch.cat([z, c], dim=-1)), mean, log_var, z


def main(args):
    def loss_fn(recon_x, x, mean, log_var):
        BCE = torch.nn.functional.binary_cross_entropy(
            recon_x.view(-1, 28 * 28), x.view(-1, 28 * 28), reduction="sum"
        )
        KLD = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
        return (BCE + args.kl_weight * KLD) / x.size(0)

    vae = VAE(args.latent_size)
    optimizer = torch.optim.Adam(vae.parameters(), lr=args.learning_rate)
    for _ in range(args.epochs):
        for x, y in args.data_loader:
            c = nn.functional.one_hot(y, 10).float()
            recon_x, mean, log_var, z = vae(x, c)
            loss = loss_fn(recon_x, x, mean, log_var)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--latent_size", type=int, default=2)
    parser.add_argument("--learning_rate", type=float, default=0.001)
    parser.add_argument("--kl_weight", type=float, default=1.0)
    main(parser.parse_args())
