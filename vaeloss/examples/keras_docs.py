import torch.nn.functional as F


def vae_loss(inputs, outputs, z_mean, z_log_var):
    original_dim = inputs.shape[-1]
    reconstruction = F.binary_cross_entropy(outputs, inputs, reduction="none").mean(dim=-1)
    reconstruction = reconstruction * original_dim
    kl = 1 + z_log_var - z_mean.square() - z_log_var.exp()
    kl = -0.5 * kl.sum(dim=-1)
    return (reconstruction + kl).mean()
