import torch


class Trainer:
    def __init__(self, model, criterion, loader):
        self.model, self.criterion, self.loader = model, criterion, loader
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train(self, epochs):
        for _ in range(epochs):
            for (x,) in self.loader:
                recon, mu, logvar = self.model(x)
                loss = self.criterion(recon, x, mu, logvar)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
