"""A convolutional VAE on CIFAR-10 shaped like PyTorch-VAE's VanillaVAE: the loss a method returning
a dict (mean-squared error averaged over pixels and batch, KL averaged over the batch times a
``kld_weight``), a config dict, ``.cuda()`` calls, a ``main()`` under the main guard."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import CIFAR10

config = {"batch_size": 32, "latent_dim": 16, "lr": 5e-3, "kld_weight": 0.00025}


class ConvVAE(nn.Module):
    def __init__(self, in_channels=3, latent_dim=16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, stride=2, padding=1), nn.LeakyReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.LeakyReLU(), nn.Flatten(),
        )  # fmt: skip
        self.fc_mu = nn.Linear(64 * 8 * 8, latent_dim)
        self.fc_var = nn.Linear(64 * 8 * 8, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, 64 * 8 * 8)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.LeakyReLU(),
            nn.ConvTranspose2d(32, in_channels, 4, stride=2, padding=1), nn.Tanh(),
        )  # fmt: skip

    def forward(self, input):
        h = self.encoder(input)
        mu, log_var = self.fc_mu(h), self.fc_var(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        recons = self.decoder(self.decoder_input(z).view(-1, 64, 8, 8))
        return [recons, input, mu, log_var]

    def loss_function(self, recons, input, mu, log_var, kld_weight=0.00025):
        recons_loss = F.mse_loss(recons, input)
        kld_loss = torch.mean(-0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp(), dim=1), dim=0)
        loss = recons_loss + kld_weight * kld_loss
        return {"loss": loss, "Reconstruction_Loss": recons_loss.detach(), "KLD": -kld_loss.detach()}


def main():
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    data = CIFAR10(root="data/cifar", train=True, download=True, transform=transform)
    loader = DataLoader(data, batch_size=config["batch_size"], shuffle=True, num_workers=4, pin_memory=True)
    model = ConvVAE(latent_dim=config["latent_dim"]).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    for epoch in range(100):
        for real_img, labels in loader:
            real_img = real_img.cuda()
            results = model(real_img)
            train_loss = model.loss_function(*results, kld_weight=config["kld_weight"])
            optimizer.zero_grad()
            train_loss["loss"].backward()
            optimizer.step()


if __name__ == "__main__":
    main()
