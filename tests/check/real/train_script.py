"""A training script as people write it: argparse, a data-set download and a training loop at
the top level, checkpoints and images saved in the loop (shaped like pytorch/examples vae/main.py)."""

import argparse
import os

import torch
import torch.nn.functional as F
from torch import nn, optim
from torchvision import datasets, transforms

parser = argparse.ArgumentParser(description="VAE MNIST Example")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--beta", type=float, default=1.0)
parser.add_argument("--data", required=True, help="where MNIST goes")
args = parser.parse_args()

torch.manual_seed(1)
os.makedirs("results", exist_ok=True)
print("training on", args.data)

train_loader = torch.utils.data.DataLoader(
    datasets.MNIST("../data", train=True, download=True, transform=transforms.ToTensor()),
    batch_size=args.batch_size,
    shuffle=True,
)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


model = VAE()
optimizer = optim.Adam(model.parameters(), lr=1e-3)
with open("train.log", "w") as log:
    log.write("start\n")


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + args.beta * KLD


def train(epoch):
    model.train()
    for data, _ in train_loader:
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        optimizer.step()
        print(loss.item())


for epoch in range(1, args.epochs + 1):
    train(epoch)
    torch.save(model.state_dict(), f"results/vae_{epoch}.pt")

if __name__ == "__main__":
    train(0)
