import pytest
import torch

from vaeloss.data import Dataset, load_dataset
from vaeloss.fastpath import MLPFastPath
from vaeloss.models import BatchedLinearVAE, BatchedMLPVAE
from vaeloss.trainer import TrainConfig, _terms, train

F64 = torch.float64
DIGITS = load_dataset("digits")
SMALL = Dataset("digits", DIGITS.x_train[:192], DIGITS.x_val[:64], None, None, (64,))

MODELS = [
    pytest.param(1, (), id="S1-no-hidden"),
    pytest.param(1, (7,), id="S1-hidden-7"),
    pytest.param(3, (7,), id="S3-hidden-7"),
    pytest.param(3, (9, 5), id="S3-hidden-9-5"),
]
LIKELIHOODS = [
    pytest.param(dict(likelihood="bernoulli"), id="bernoulli"),
    pytest.param(dict(likelihood="gaussian", sigma=0.5), id="gaussian-sigma-0.5"),
    pytest.param(dict(likelihood="gaussian", optimal_sigma=True), id="gaussian-optimal-sigma"),
]


def _setup(S, hidden, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = BatchedMLPVAE(12, hidden, 4, n_models=S, seeds=list(range(S))).double()
    x = torch.rand(10, 12, generator=g, dtype=F64)
    eps = torch.randn(S, 10, 4, generator=g, dtype=F64)
    coef_recon = torch.rand(S, generator=g, dtype=F64) + 0.5
    coef_kl = torch.rand(S, 4, generator=g, dtype=F64) * 3
    coef_kl[0, 1] = 0.0  # a dim held at its free bits
    if S > 1:
        coef_recon[1], coef_kl[1] = 0.0, 0.0  # a model that went non-finite
    return model, x, eps, coef_recon, coef_kl


@pytest.mark.parametrize("S, hidden", MODELS)
@pytest.mark.parametrize("lik", LIKELIHOODS)
def test_values_and_gradients_equal_autograd(S, hidden, lik):
    model, x, eps, coef_recon, coef_kl = _setup(S, hidden)
    cfg = TrainConfig(betas=[1.0] * S, **lik)
    expected_recon, expected_kl, _ = _terms(model, x, eps, cfg, False)
    loss = (coef_recon * expected_recon).sum() + (coef_kl * expected_kl).sum()
    expected_grads = torch.autograd.grad(loss, list(model.parameters()))

    fast = MLPFastPath(model, likelihood=lik["likelihood"], sigma=cfg.sigma, optimal_sigma=cfg.optimal_sigma)
    actual_recon, actual_kl = fast.forward(x, eps)
    fast.backward(coef_recon, coef_kl)
    torch.testing.assert_close(actual_recon, expected_recon.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(actual_kl, expected_kl.detach(), rtol=1e-12, atol=1e-12)
    for (name, p), expected in zip(model.named_parameters(), expected_grads):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, expected, rtol=1e-10, atol=1e-12, msg=name)


def test_a_model_with_zero_coefficients_gets_zero_gradients():
    model, x, eps, coef_recon, coef_kl = _setup(3, (7,))
    fast = MLPFastPath(model, likelihood="bernoulli")
    fast.forward(x, eps)
    fast.backward(coef_recon, coef_kl)
    for p in model.parameters():
        assert p.grad is not None
        assert torch.count_nonzero(p.grad[1]) == 0
        assert torch.count_nonzero(p.grad[0]) > 0


def test_backward_before_forward_is_an_error():
    model, *_ = _setup(1, (7,))
    with pytest.raises(RuntimeError, match=r"needs a forward\(\) first"):
        MLPFastPath(model, likelihood="bernoulli").backward(torch.ones(1), torch.ones(1, 4))


def test_supports_only_mlp_models_with_bernoulli_or_gaussian_decoders():
    mlp = BatchedMLPVAE(12, (7,), 4)
    assert MLPFastPath.supports(mlp, "bernoulli") and MLPFastPath.supports(mlp, "gaussian")
    assert not MLPFastPath.supports(mlp, "continuous_bernoulli")
    assert not MLPFastPath.supports(BatchedLinearVAE(12, 4), "gaussian")


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(dict(), id="bernoulli"),
        pytest.param(dict(free_bits=0.3, schedule="linear", loss_scale=2.0), id="free-bits-warmup-scaled"),
        pytest.param(dict(likelihood="gaussian", optimal_sigma=True), id="gaussian-optimal-sigma"),
    ],
)
def test_training_with_and_without_the_fast_path_agrees(options):
    results = {}
    for fast in (True, False):
        model = BatchedMLPVAE(64, (16,), 3, n_models=2, seeds=[1, 2])
        cfg = TrainConfig(
            betas=[0.5, 4.0], model_seeds=[1, 2], epochs=2, batch_size=32, fast_path=fast, **options
        )
        results[fast] = (train(model, SMALL, cfg).history, [p.detach().clone() for p in model.parameters()])
    (h_fast, p_fast), (h_auto, p_auto) = results[True], results[False]
    for col in ("train_recon", "train_kl", "val_recon", "val_kl"):
        assert h_fast[col].tolist() == pytest.approx(h_auto[col].tolist(), rel=1e-4, abs=1e-4)
    for a, e in zip(p_fast, p_auto):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)
