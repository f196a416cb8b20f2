import pytest
import torch
from torch import nn

from vaeloss import InvalidArgumentError
from vaeloss.engine.models import BatchedLinearVAE, BatchedMLPVAE, ConvVAE, build_model


def test_batched_mlp_equals_independent_models():
    """Model s of a batch of 3 computes what a single model with that seed computes."""
    x = torch.rand(5, 12)
    batch = BatchedMLPVAE(12, (16, 8), 3, n_models=3, seeds=[1, 2, 3])
    for s, seed in enumerate([1, 2, 3]):
        single = BatchedMLPVAE(12, (16, 8), 3, n_models=1, seeds=[seed])
        mu_b, lv_b = batch.encode(x)
        mu_s, lv_s = single.encode(x)
        torch.testing.assert_close(mu_b[s], mu_s[0])
        z = torch.randn(1, 5, 3)
        torch.testing.assert_close(batch.decode(z.expand(3, -1, -1).contiguous())[s], single.decode(z)[0])


def test_mlp_matches_nn_linear_reference():
    m = BatchedMLPVAE(6, (4,), 2, n_models=1)
    enc = nn.Linear(6, 4)
    head = nn.Linear(4, 4)
    with torch.no_grad():
        enc.weight.copy_(m.enc_w[0][0].T)
        enc.bias.copy_(m.enc_b[0][0, 0])
        head.weight.copy_(m.head_w[0].T)
        head.bias.copy_(m.head_b[0, 0])
    x = torch.rand(3, 6)
    expected = head(torch.relu(enc(x)))
    mu, lv = m.encode(x)
    torch.testing.assert_close(torch.cat([mu[0], lv[0]], -1), expected)


def test_linear_expected_sq_error_matches_monte_carlo():
    torch.manual_seed(0)
    m = BatchedLinearVAE(5, 3, n_models=2)
    x = torch.randn(4, 5)
    mu, lv = m.encode(x)
    exact = m.expected_sq_error(x, mu, lv)
    z = mu + torch.exp(0.5 * lv) * torch.randn(4000, *mu.shape)
    samples = torch.stack([(x - m.decode(z[i])).square().sum(-1) for i in range(4000)])
    torch.testing.assert_close(samples.mean(0), exact, rtol=0.05, atol=0.05)


def test_conv_vae_shapes():
    m = build_model("conv", data_dim=784, shape=(1, 28, 28), hidden=(), latent_dim=4, n_models=2)
    mu, lv = m.encode(torch.rand(3, 784))
    assert mu.shape == (2, 3, 4)
    assert m.decode(mu).shape == (2, 3, 784)
    with pytest.raises(InvalidArgumentError, match=r"divisible by 4 .* shape=\(1, 8, 10\)"):
        ConvVAE((1, 8, 10), 2)


def test_user_model(tmp_path):
    f = tmp_path / "vae.py"
    f.write_text(
        "import torch\nfrom torch import nn\n"
        "class VAE(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.e = nn.Linear(64, 4); self.d = nn.Linear(2, 64)\n"
        "    def encode(self, x):\n        return self.e(x).chunk(2, -1)\n"
        "    def decode(self, z):\n        return self.d(z)\n"
        "    def forward(self, x):\n        mu, lv = self.encode(x); return self.decode(mu), mu, lv\n"
        "class NoDecode(nn.Module):\n    def encode(self, x):\n        return x, x\n"
    )
    m = build_model(f"{f}:VAE", data_dim=64, shape=(64,), hidden=(), latent_dim=2, n_models=2)
    mu, _ = m.encode(torch.rand(5, 64))
    assert mu.shape == (2, 5, 2)
    with pytest.raises(InvalidArgumentError, match=r"define decode\(\)"):
        build_model(f"{f}:NoDecode", data_dim=64, shape=(64,), hidden=(), latent_dim=2, n_models=1)
    with pytest.raises(
        InvalidArgumentError, match=r"mlp\|conv\|linear\|FILE:Class but got model='nope.py:X'"
    ):
        build_model("nope.py:X", data_dim=64, shape=(64,), hidden=(), latent_dim=2, n_models=1)
