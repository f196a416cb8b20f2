"""A notebook-style script: Fashion-MNIST, a 2-D latent, batch size 100, the loss written inline in
a top-level training loop (binary cross-entropy averaged over pixels and batch, the KL summed over
the batch and the latent dims), a ``device`` string."""

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms

device = "cuda"
batch_size = 100
latent_dim = 2

dataset = datasets.FashionMNIST("./fmnist", train=True, download=True, transform=transforms.ToTensor())
loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)

encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 2 * latent_dim)).to(
    device
)
decoder = nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid()).to(device)
opt = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=1e-3)

for epoch in range(20):
    for x, _ in loader:
        x = x.to(device).view(-1, 784)
        z_mu, z_logvar = encoder(x).chunk(2, dim=1)
        z = z_mu + torch.randn_like(z_mu) * (0.5 * z_logvar).exp()
        x_hat = decoder(z)
        recon = F.binary_cross_entropy(x_hat, x)
        kl = -0.5 * torch.sum(1 + z_logvar - z_mu.pow(2) - z_logvar.exp())
        loss = recon + kl
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(epoch, loss.item())
