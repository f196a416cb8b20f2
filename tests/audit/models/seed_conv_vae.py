"""The conv VAE of the seed notes (SEEDS.md, situation 4), as such a file is written: a whole
training script. Conv encoder (32, 64 channels, stride 2) to a 16-unit layer, fc_mu/fc_logvar;
conv-transpose decoder ending in a sigmoid; BCE (sum) + KLD (sum). Test material: the audit
must take the class from it without running the script."""

import argparse

import torch
import torch.nn.functional as F
from torch import nn, optim
from torchvision import datasets, transforms

parser = argparse.ArgumentParser(description="conv VAE MNIST")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--latent", type=int, default=2)
args = parser.parse_args()

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
train_loader = torch.utils.data.DataLoader(
    datasets.MNIST("../data", train=True, download=True, transform=transforms.ToTensor()),
    batch_size=args.batch_size,
    shuffle=True,
)


class VAE(nn.Module):
    def __init__(self, latent=args.latent):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 4, 2, 1)  # 14x14
        self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)  # 7x7
        self.fc1 = nn.Linear(64 * 7 * 7, 16)
        self.fc_mu = nn.Linear(16, latent)
        self.fc_logvar = nn.Linear(16, latent)
        self.fc3 = nn.Linear(latent, 64 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.deconv2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def encode(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        h = F.relu(self.fc1(h.view(-1, 64 * 7 * 7)))
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        h = F.relu(self.fc3(z)).view(-1, 64, 7, 7)
        return torch.sigmoid(self.deconv2(F.relu(self.deconv1(h))))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x, reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


model = VAE().to(device)
optimizer = optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(1, args.epochs + 1):
    model.train()
    for data, _ in train_loader:
        data = data.to(device)
        optimizer.zero_grad()
        recon, mu, logvar = model(data)
        loss = loss_function(recon, data, mu, logvar)
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), f"vae_{epoch}.pt")
