"""Lightning-style modules (plain nn.Module): the loss is computed in training_step."""

import torch
import torch.nn.functional as F
from torch import nn


class LitVAE(nn.Module):
    def __init__(self, input_dim=784, latent_dim=20, hidden=64):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden)
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.fc3 = nn.Linear(latent_dim, hidden)
        self.fc4 = nn.Linear(hidden, input_dim)

    def forward(self, x):
        h = F.relu(self.fc1(x.flatten(1)))
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    def training_step(self, batch, batch_idx):
        x, _ = batch
        recon, mu, logvar = self(x)
        bce = F.binary_cross_entropy(recon, x.flatten(1), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kld) / x.shape[0]


class LitDictVAE(LitVAE):
    def __init__(self, input_dim=784, latent_dim=20, beta=4.0):
        super().__init__(input_dim, latent_dim)
        self.beta = beta

    def training_step(self, batch, batch_idx):
        x = batch["image"]
        recon, mu, logvar = self(x)
        rec = F.binary_cross_entropy(recon, x.flatten(1), reduction="none").sum(1).mean()
        kld = (-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)).mean()
        loss = rec + self.beta * kld
        return {"loss": loss, "log": {"rec": rec.detach()}}


class LitImageVAE(nn.Module):
    """Flattens its images itself (first layer Linear(784, ...)) and decodes to 1 x side x side:
    a flat batch cannot be compared with its output, 1x28x28 images can."""

    def __init__(self, input_dim=784, latent_dim=20):
        super().__init__()
        self.side = int(input_dim**0.5)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(input_dim, 64), nn.ReLU())
        self.fc_mu = nn.Linear(64, latent_dim)
        self.fc_logvar = nn.Linear(64, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, input_dim))

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.decoder(z).view(-1, 1, self.side, self.side)
        return logits, mu, logvar

    def training_step(self, batch, batch_idx):
        x, _ = batch
        logits, mu, logvar = self(x)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3)).mean()
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1).mean()
        self.log("train/rec", rec)
        return rec + 0.25 * kld

    def log(self, name, value):  # as LightningModule.log, for this plain module
        pass
