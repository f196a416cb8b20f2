"""One MLP VAE for 8x8 digits, three decoder outputs (sigmoid, tanh, none), and models for the
interface rules (constructor arguments, an API to state, vmap that cannot run, sibling import)."""

import torch
from layers import hidden_block
from torch import nn


class SigmoidVAE(nn.Module):
    def __init__(self, latent_dim=8, hidden=128):
        super().__init__()
        self.enc = hidden_block(64, hidden)
        self.fc_mu, self.fc_logvar = nn.Linear(hidden, latent_dim), nn.Linear(hidden, latent_dim)
        self.dec = nn.Sequential(hidden_block(latent_dim, hidden), nn.Linear(hidden, 64))

    def encode(self, x):
        h = self.enc(x.view(-1, 64))
        return self.fc_mu(h), self.fc_logvar(h)

    def out(self, a):
        return torch.sigmoid(a)

    def decode(self, z):
        return self.out(self.dec(z))

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(mu), mu, logvar


class TanhVAE(SigmoidVAE):
    def out(self, a):
        return torch.tanh(a)


class LogitVAE(SigmoidVAE):
    def out(self, a):
        return a


class SmallLogits(LogitVAE):
    """Logits scaled down around 0.5: at initialisation every output lies in [0, 1], so only
    the user can say that they are logits (--decoder-output logits)."""

    def out(self, a):
        return 0.5 + 0.01 * torch.tanh(a) + 0.001 * a


class NeedsLatentDim(SigmoidVAE):
    def __init__(self, latent_dim, hidden=64):
        super().__init__(latent_dim, hidden)


class Heads(SigmoidVAE):
    """encode returns (std, mu, h): three [N, k] tensors, not in a recognisable order (and the
    inherited forward cannot unpack them)."""

    def encode(self, x):
        mu, logvar = super().encode(x)
        return (0.5 * logvar).exp(), mu, mu.detach() * 0


class ItemInDecode(LogitVAE):
    def decode(self, z):
        if z.abs().max().item() > 1e6:  # Python control flow on a value: vmap cannot run it
            z = z.clamp(-1e6, 1e6)
        return super().decode(z)


class BatchNormDropoutVAE(LogitVAE):
    def __init__(self, latent_dim=8, hidden=128):
        super().__init__(latent_dim, hidden)
        self.enc = nn.Sequential(nn.Linear(64, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.3))


class FailsInTraining(LogitVAE):
    """Probes fine; raises after some training steps (as a shape or device bug would)."""

    calls = 0

    def encode(self, x):
        if self.training:
            type(self).calls += 1
            if type(self).calls > 20:
                raise RuntimeError("boom in training")
        return super().encode(x)
