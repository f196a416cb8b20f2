"""S copies of a module as one batched model (torch.func) or a loop: equal to separate runs."""

import pytest
import torch
from torch import nn

from vaeloss.engine.build import conv_interface
from vaeloss.engine.data import Dataset
from vaeloss.engine.evaluate import evaluate_models
from vaeloss.engine.interface import find_interface
from vaeloss.engine.models import ConvVAE
from vaeloss.engine.stacks import FuncStack, ModuleStack, stack_models
from vaeloss.engine.trainer import TrainConfig, train

G = torch.Generator().manual_seed(0)
IMAGES = Dataset(
    "blobs", torch.rand(192, 64, generator=G), torch.rand(64, 64, generator=G), None, None, (1, 8, 8)
)
IFACE = conv_interface((1, 8, 8), 2)


def _conv():
    return ConvVAE((1, 8, 8), 2, hidden=16)


@pytest.mark.parametrize("stack", [FuncStack, ModuleStack], ids=["vmap", "loop"])
def test_conv_sweep_equals_separate_runs(stack):
    betas = [0.1, 1.0, 10.0]
    cfg = dict(epochs=2, batch_size=32, lr=3e-3, seed=1, likelihood="bernoulli")
    together = stack(_conv, IFACE, n_models=3, seeds=[4, 4, 4], data_dim=64)
    h = train(together, IMAGES, TrainConfig(betas=betas, model_seeds=[4, 4, 4], **cfg)).history
    for s, beta in enumerate(betas):
        alone = stack(_conv, IFACE, n_models=1, seeds=[4], data_dim=64)
        ha = train(alone, IMAGES, TrainConfig(betas=[beta], model_seeds=[4], **cfg)).history
        hs = h[h.model == s].reset_index(drop=True)
        for col in ("train_recon", "train_kl", "val_recon", "val_kl"):
            assert hs[col].tolist() == pytest.approx(ha[col].tolist(), rel=1e-4, abs=1e-4)
        for (a, _), (b, _) in zip(together.model_tensors(), alone.model_tensors()):
            if stack is FuncStack:
                torch.testing.assert_close(a.detach()[s], b.detach()[0], rtol=1e-4, atol=1e-5)
    if stack is ModuleStack:
        for p, q in zip(together.models[1].parameters(), alone.models[0].parameters()):
            assert p.shape == q.shape  # the last alone run had beta 10; shapes only


class BatchNormVAE(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(16, 4)
        self.dec = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 64))

    def encode(self, x):
        return tuple(self.head(self.enc(x)).chunk(2, -1))

    def decode(self, z):
        return self.dec(z)


def test_batchnorm_runs_batched_and_equals_the_loop():
    iface = find_interface(BatchNormVAE(), IMAGES.x_train[:4], (64,))
    batched, how = stack_models(
        BatchNormVAE, iface, n_models=2, seeds=[0, 0], data_dim=64, sample=IMAGES.x_train[:8]
    )
    assert how.kind == "batched"
    loop = ModuleStack(BatchNormVAE, iface, n_models=2, seeds=[0, 0], data_dim=64)
    cfg = TrainConfig(betas=[1.0, 3.0], model_seeds=[0, 0], epochs=2, batch_size=32, likelihood="bernoulli")
    hb = train(batched, IMAGES, cfg).history
    hl = train(loop, IMAGES, cfg).history
    assert hb.val_recon.tolist() == pytest.approx(hl.val_recon.tolist(), rel=1e-4)
    # the running variances moved the same way in both (not the running means: the bias before a
    # BatchNorm has a zero gradient up to rounding, which Adam turns into steps of either sign)
    actual = batched.enc__1__running_var.detach()[1]
    expected = loop.models[1].enc[1].running_var
    assert not torch.allclose(expected, torch.ones_like(expected))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-6)


def test_batchnorm_and_dropout_are_measured_in_eval_mode():
    """Dropout off and BatchNorm on its running statistics: the metrics are deterministic and
    equal to those of the module evaluated by hand in eval()."""
    iface = find_interface(BatchNormVAE(0.5), IMAGES.x_train[:4], (64,))
    model, _ = stack_models(
        lambda: BatchNormVAE(0.5), iface, n_models=1, seeds=[0], data_dim=64, sample=IMAGES.x_train[:8]
    )
    train(model, IMAGES, TrainConfig(betas=[1.0], epochs=2, batch_size=32, likelihood="bernoulli"))
    model.train()  # evaluate_models must switch it to eval() itself
    runs = [
        evaluate_models(model, IMAGES.x_val, likelihood="bernoulli", decoder_output="logits", iwae_samples=8)[
            0
        ]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert not model.training
    single = BatchNormVAE(0.5)
    state = {name.replace("__", "."): t.detach()[0] for name, t in model.named_parameters()}
    state |= {name.replace("__", "."): t[0] for name, t in model.named_buffers()}
    single.load_state_dict(state)
    single.eval()
    mu, _ = single.encode(IMAGES.x_val)
    expected_au = int((mu.var(0, unbiased=False) > 0.01).sum())
    assert runs[0].active_units == expected_au


class ItemInDecode(BatchNormVAE):
    def decode(self, z):
        if z.abs().max().item() > 1e6:  # data-dependent Python control flow: vmap cannot trace it
            z = z / 2
        return self.dec(z)


def test_a_module_vmap_cannot_run_falls_back_to_the_loop_and_says_why():
    iface = find_interface(ItemInDecode(), IMAGES.x_train[:4], (64,))
    model, how = stack_models(
        ItemInDecode, iface, n_models=2, seeds=[0, 0], data_dim=64, sample=IMAGES.x_train[:8]
    )
    assert isinstance(model, ModuleStack) and how.kind == "loop"
    assert "item" in how.reason
    assert how.describe().startswith("one copy after the other (vmap cannot run this model: ")


@pytest.mark.parametrize("stack", [FuncStack, ModuleStack], ids=["vmap", "loop"])
def test_state_of_one_copy(stack):
    m = stack(_conv, IFACE, n_models=3, seeds=[0, 1, 2], data_dim=64)
    saved = m.state_of(2)
    before = [t.detach().clone() for t, _ in m.model_tensors()]
    with torch.no_grad():
        for t, _ in m.model_tensors():
            t.add_(1.0)
    m.load_state_of(2, saved)
    for (t, owner), old in zip(m.model_tensors(), before):
        if owner is None:
            torch.testing.assert_close(t.detach()[2], old[2])
            torch.testing.assert_close(t.detach()[0], old[0] + 1)
        else:
            torch.testing.assert_close(t.detach(), old if owner == 2 else old + 1)


def _trained_recon(stack, *, device="cpu", bf16=False):
    model = stack(_conv, IFACE, n_models=2, seeds=[4, 5], data_dim=64)
    cfg = TrainConfig(betas=[0.5, 1.0], epochs=3, batch_size=32, lr=3e-3, device=device, bf16=bf16)
    return train(model, IMAGES, cfg).history.groupby("model").val_recon.last().to_numpy()


@pytest.mark.parametrize("stack", [FuncStack, ModuleStack], ids=["vmap", "loop"])
def test_bf16_autocast_path_trains_close_to_float32(stack):
    """The GPU's bf16 path, run on the CPU: the same code, reconstructions within 2%."""
    actual = _trained_recon(stack, bf16=True)
    expected = _trained_recon(stack)
    assert actual == pytest.approx(expected, rel=0.02)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("stack", [FuncStack, ModuleStack], ids=["vmap", "loop"])
def test_cuda_stack_trains_like_cpu(stack):
    actual = _trained_recon(stack, device="cuda")
    expected = _trained_recon(stack)
    assert actual == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("stack", [FuncStack, ModuleStack], ids=["vmap", "loop"])
def test_one_copy_alone_equals_its_slice_of_the_stack(stack):
    """Figures decode one model of the sweep: alone, it gives what the whole stack gives it."""
    from vaeloss.engine.models import BatchedMLPVAE

    m = stack(
        lambda: ConvVAE((1, 8, 8), 3), conv_interface((1, 8, 8), 3), n_models=3, seeds=[0, 1, 2], data_dim=64
    )
    m.eval()
    x, z = torch.rand(5, 64), torch.randn(5, 3)
    with torch.no_grad():
        mu, logvar = m.encode(x)
        full = m.decode(z.expand(3, -1, -1).contiguous())
        for s in range(3):
            torch.testing.assert_close(m.encode_one(s, x), (mu[s], logvar[s]))
            torch.testing.assert_close(m.decode_one(s, z), full[s])
    mlp = BatchedMLPVAE(64, (16,), 3, n_models=2)
    with torch.no_grad():
        torch.testing.assert_close(mlp.decode_one(1, z), mlp.decode(z.expand(2, -1, -1))[1])
