import torch.nn.functional as F


class ELBOLoss:
    """A loss object with __call__, on decoder logits."""

    def __init__(self, beta=1.0, reduction="mean"):
        self.beta = beta
        self.reduction = reduction

    def __call__(self, x_hat, x, mu, log_var):
        rec = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        loss = rec + self.beta * kl
        return loss.mean() if self.reduction == "mean" else loss.sum()
