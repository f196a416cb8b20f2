"""Which code may be a VAE loss, from its syntax alone (tests of project/prefilter.py)."""

import ast
from textwrap import dedent

import pytest

from vaeloss.project.prefilter import Unit, vae_units

CASES = {
    "pytorch-function": (
        """
        def loss_function(recon_x, x, mu, logvar):
            BCE = F.binary_cross_entropy(recon_x, x, reduction='sum')
            KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            return BCE + KLD
        """,
        [Unit("loss_function", 2)],
    ),
    "squared-error-and-exp-of-logvar": (
        """
        def step(r, x, m, log_var):
            return ((r - x) ** 2).sum() - 0.5 * (1 + log_var - m * m - log_var.exp()).sum()
        """,
        [Unit("step", 2)],
    ),
    "method-of-a-model": (
        """
        class VAE(nn.Module):
            def forward(self, x):
                return self.dec(x)

            def training_step(self, batch, i):
                kl = self.kl(batch)
                return self.recon_loss(batch) + kl
        """,
        [Unit("VAE.training_step", 6)],
    ),
    "keras-top-level-add-loss": (
        """
        reconstruction_loss = keras.losses.binary_crossentropy(inputs, outputs) * original_dim
        kl_loss = -0.5 * K.sum(1 + z_log_var - K.square(z_mean) - K.exp(z_log_var), axis=-1)
        vae.add_loss(K.mean(reconstruction_loss + kl_loss))
        """,
        [Unit("<module>", 2)],
    ),
    "flax-closure": (
        """
        def train_step(state, batch, z_rng):
            def loss_fn(params):
                recon_x, mean, logvar = model().apply(params, batch)
                bce_loss = binary_cross_entropy_with_logits(recon_x, batch).mean()
                kld_loss = kl_divergence(mean, logvar).mean()
                return bce_loss + kld_loss
            return loss_fn
        """,
        [Unit("train_step", 2)],
    ),
    "classifier": ("def step(x, y):\n    return F.cross_entropy(net(x), y)\n", []),
    "gan": (
        """
        def train(d, g, x, z):
            loss_d = bce(d(x), ones) + bce(d(g(z)), zeros)
            loss_g = bce(d(g(z)), ones)
            return loss_d, loss_g
        """,
        [],
    ),
    "kl-alone": (
        "def kld(mu, logvar):\n    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())\n",
        [],
    ),
    "recon-alone": ("def recon(r, x):\n    return ((r - x) ** 2).sum()\n", []),
    "terms-in-two-functions": (
        """
        def kl_term(mu, logvar):
            return (logvar.exp() + mu**2 - 1 - logvar).sum() / 2

        def recon_term(r, x):
            return F.mse_loss(r, x)
        """,
        [],
    ),
}


@pytest.mark.parametrize(("source", "expected"), list(CASES.values()), ids=list(CASES))
def test_units_computing_both_terms(source, expected):
    assert vae_units(ast.parse(dedent(source))) == expected
