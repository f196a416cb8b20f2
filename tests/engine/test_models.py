import pytest
import torch
from torch import nn

from vaeloss import InvalidArgumentError
from vaeloss.engine.build import build_model
from vaeloss.engine.models import BatchedLinearVAE, BatchedMLPVAE, ConvVAE, DataScaling


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
    m, how = build_model("conv", data_dim=784, shape=(1, 28, 28), hidden=(), latent_dim=4, n_models=2)
    assert how.kind == "batched"
    mu, lv = m.encode(torch.rand(3, 784))
    assert mu.shape == (2, 3, 4)
    assert m.decode(mu).shape == (2, 3, 784)
    with pytest.raises(InvalidArgumentError, match=r"divisible by 4 .* shape=\(1, 8, 10\)"):
        ConvVAE((1, 8, 10), 2)


def test_unknown_model_kind():
    with pytest.raises(InvalidArgumentError, match=r"mlp\|conv\|linear\|FILE:Class but got model='nope'"):
        build_model("nope", data_dim=64, shape=(64,), hidden=(), latent_dim=2, n_models=1)


@pytest.mark.parametrize("logits", [False, True], ids=["mean", "logits"])
def test_data_scaling_is_a_reparameterisation(logits):
    """The same weights give outputs that differ exactly by the affine maps."""
    x = torch.rand(50, 64)
    sc = DataScaling.from_data(x, logits=logits)
    plain = BatchedMLPVAE(64, (16,), 3, n_models=1)
    scaled = BatchedMLPVAE(64, (16,), 3, n_models=1, scaling=sc)
    scaled.load_state_dict(plain.state_dict() | {"in_shift": sc.shift, "out_shift": sc.out_shift})
    actual_mu, _ = scaled.encode(x)
    expected_mu, _ = plain.encode((x - sc.shift) / sc.scale)
    torch.testing.assert_close(actual_mu, expected_mu)
    z = torch.randn(1, 5, 3)
    torch.testing.assert_close(scaled.decode(z), sc.out_shift + sc.out_scale * plain.decode(z))
    expected_shift = torch.logit(x.mean(0).clamp(1e-3, 1 - 1e-3)) if logits else x.mean(0)
    torch.testing.assert_close(sc.out_shift, expected_shift, rtol=1e-5, atol=1e-5)
    assert sc.scale == pytest.approx(float((x - x.mean(0)).square().mean().sqrt()), rel=1e-5)


def test_linear_expected_sq_error_with_scaling_matches_sampling():
    x = torch.randn(4, 5) * 3 + 1
    m = BatchedLinearVAE(
        5, 3, n_models=1, scaling=DataScaling.from_data(torch.randn(100, 5) * 3, logits=False)
    )
    mu, lv = m.encode(x)
    exact = m.expected_sq_error(x, mu, lv)
    z = mu + torch.exp(0.5 * lv) * torch.randn(4000, *mu.shape)
    samples = torch.stack([(x - m.decode(z[i])).square().sum(-1) for i in range(4000)])
    torch.testing.assert_close(samples.mean(0), exact, rtol=0.05, atol=0.05)


def test_state_of_and_load_state_of_touch_one_model():
    m = BatchedMLPVAE(8, (4,), 2, n_models=3, seeds=[0, 1, 2])
    saved = m.state_of(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    m.load_state_of(1, saved)
    fresh = BatchedMLPVAE(8, (4,), 2, n_models=3, seeds=[0, 1, 2])
    for p, q in zip(m.parameters(), fresh.parameters()):
        torch.testing.assert_close(p.detach()[1], q.detach()[1])
        torch.testing.assert_close(p.detach()[0], q.detach()[0] + 1)
