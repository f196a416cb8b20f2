"""Losses computed inline in a training loop (``loss.backward()``), found and checked as the
loop computes them: a top-level loop of a script with argparse, a ``train()`` function with a
``beta=4.0`` default, and a classifier's loop that must not pass for a VAE loss.

The betas are derived by hand and confirmed with torch.distributions: the loop's own
statements, run on random tensors, equal ``a * NLL + b * KL`` with the hand-derived a and b.
"""

import ast
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from vaeloss.check.inline import find_inline_losses
from vaeloss.cli import main

HERE = Path(__file__).parent / "inline"


def _check(capsys, target, *args):
    code = main(["check", str(HERE / target), "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def _terms(B, D, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    recon = 0.05 + 0.9 * torch.rand(B, D, generator=g, dtype=torch.float64)
    x = torch.rand(B, D, generator=g, dtype=torch.float64)
    mu = torch.randn(B, k, generator=g, dtype=torch.float64)
    logvar = 0.3 * torch.randn(B, k, generator=g, dtype=torch.float64)
    q = Normal(mu, torch.exp(0.5 * logvar))
    kl = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum()
    return recon, x, mu, logvar, kl


def _run_loop_statements(path, namespace):
    """The statements the loop computes its loss with, run as written (the file's own text)."""
    text = path.read_text()
    [found] = find_inline_losses(ast.parse(text))
    for node in found.nodes:
        exec(ast.get_source_segment(text, node), namespace)
    return namespace["loss"]


@pytest.mark.parametrize(("B", "k"), [(128, 20), (16, 5)], ids=["B128-k20", "B16-k5"])
def test_script_loop_with_argparse(capsys, B, k):
    D, kl_weight = 784, 0.5  # argparse's default
    recon, x, mu, logvar, kl = _terms(B, D, k)

    class Args:
        pass

    args = Args()
    args.kl_weight = kl_weight
    ns = {"F": F, "torch": torch, "args": args, "recon_batch": recon, "data": x, "mu": mu, "logvar": logvar}
    actual = _run_loop_statements(HERE / "script_loop.py", ns)
    nll = -Bernoulli(probs=recon, validate_args=False).log_prob(x).sum()
    a, b = 1 / (B * D), kl_weight  # BCE averaged over batch and pixels; the KL summed, times 0.5
    assert float(actual) == pytest.approx(float(a * nll + b * kl), rel=1e-12)
    code, report = _check(capsys, "script_loop.py", "-B", str(B), "-k", str(k))
    assert code == 1  # beta depends on the batch size: an error finding
    assert report["effective_beta"] == pytest.approx(b / a, rel=1e-9)
    assert report["effective_beta_formula"] == "B*D/2"
    assert report["function"].startswith("_vaeloss_inline_")
    assert (
        "the loss computed inline at lines 46-48, in the script's top-level loop"
        in report["selected_because"]
    )
    assert any(f["line"] == 46 for f in report["findings"])


@pytest.mark.parametrize("target", ["train_function.py", "train_function.py:train"], ids=["found", "named"])
def test_train_function_with_a_beta_default(capsys, target):
    B, D, k, beta = 128, 784, 20, 4.0
    recon, x, mu, logvar, kl = _terms(B, D, k)
    ns = {"F": F, "torch": torch, "x_hat": recon, "x": x, "mu": mu, "log_var": logvar, "beta": beta}
    actual = _run_loop_statements(HERE / "train_function.py", ns)
    nll = -Normal(recon, 1.0).log_prob(x).sum()  # constants: cancel in the comparison below
    const = 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64)) * B * D
    a, b = 2 / B, beta / B  # the squared error is twice the unit Gaussian's NLL; both per sample
    assert float(actual) == pytest.approx(float(a * (nll - const) + b * kl), rel=1e-12)
    code, report = _check(capsys, target)
    assert code == 0
    assert report["effective_beta"] == pytest.approx(b / a, rel=1e-9)  # 2
    assert report["kl_weight_parameter"] == "beta"
    assert "in the loop of train()" in report["selected_because"]


def test_a_classifiers_loop_is_no_vae_loss(capsys):
    code, report = _check(capsys, "classifier_loop.py")
    assert code == 2
    assert report.get("effective_beta") is None
    assert report["error"].startswith(
        "Expected a VAE loss but the loss computed inline at line 10, in the script's top-level loop, "
        "is none: it reads logits, y, and no posterior mean and (log-)variance (a classifier's or a "
        "GAN's loss?)."
    )


@pytest.mark.slow
@pytest.mark.parametrize(("shape", "expected"), [("28,28,1", 1.0), ("16,16,3", 3.0)], ids=["mnist", "rgb"])
def test_keras_io_train_step_under_a_gradient_tape(capsys, shape, expected):
    """The keras.io VAE's ``train_step`` as published: the loss under ``with tf.GradientTape()``,
    used by ``tape.gradient(total_loss, ...)``, in no loop. Its statements are those of
    ``frameworks/tf_keras_io_loss.py`` (with keras.ops for tf), whose betas the framework tests
    confirm by finite differences: Keras's BCE averages over the channel axis, so beta = C."""
    code, report = _check(capsys, "keras_io_train_step.py", "--input-shape", shape, "-B", "16", "-k", "2")
    assert code == 0, report
    assert report["framework"] == "tensorflow"
    assert report["effective_beta"] == pytest.approx(expected, rel=1e-9)
    assert report["selected_because"].endswith("in VAE.train_step()")
    assert report["roles"] == {
        "data": "data",
        "recon": "reconstruction",
        "mu": "z_mean",
        "scale": "z_log_var",
    }
