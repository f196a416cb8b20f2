"""Losses computed inline in a training loop (``loss.backward()``), found and checked as the
loop computes them: a top-level loop of a script with argparse, a ``train()`` function with a
``beta=4.0`` default, and a classifier's loop that must not pass for a VAE loss.

The betas are derived by hand and confirmed with torch.distributions: the loop's own
statements, run on random tensors, equal ``a * NLL + b * KL`` with the hand-derived a and b.
"""

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from vaeloss.check.inline import find_inline_losses
from vaeloss.check.source import read_static, select
from vaeloss.cli import main
from vaeloss.usercode.sourcefile import read_source_file

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


def test_a_batch_named_like_no_role_takes_the_role_left(capsys):
    """``for xb, _ in loader``: recon, mu and log_var are named; xb is the data. By hand: squared
    error summed (twice the unit Gaussian NLL, a = 2) + KL summed (b = 1): beta 1/2."""
    B, D, k = 16, 784, 5
    recon, x, mu, logvar, kl = _terms(B, D, k)
    ns = {"F": F, "torch": torch, "reconstructed": recon, "xb": x, "mu": mu, "log_var": logvar}
    actual = _run_loop_statements(HERE / "unnamed_batch.py", ns)
    half_squares = 0.5 * ((x - recon) ** 2).sum()  # the unit Gaussian's NLL, constants dropped
    assert float(actual) == pytest.approx(float(2 * half_squares + kl), rel=1e-12)
    code, report = _check(capsys, "unnamed_batch.py", "-B", str(B), "-k", str(k))
    assert code == 0, report
    assert report["roles"] == {"data": "xb", "recon": "reconstructed", "mu": "mu", "scale": "log_var"}
    assert report["effective_beta"] == pytest.approx(0.5, rel=1e-9)


def test_a_classifiers_loop_is_no_vae_loss(capsys):
    code, report = _check(capsys, "classifier_loop.py")
    assert code == 2
    assert report.get("effective_beta") is None
    assert report["error"].startswith(
        "Expected a VAE loss but the loss computed inline at line 10, in the script's top-level loop, "
        "is none: it reads logits, y, and no posterior mean and (log-)variance (a classifier's or a "
        "GAN's loss?)."
    )


def test_a_gans_loop_is_no_vae_loss(capsys):
    """pytorch/examples' DCGAN loop shape: three ``backward()`` (D on real, D on fake, G), each a
    BCE of the discriminator's output; ``criterion = nn.BCELoss()`` is torch's own loss."""
    code, report = _check(capsys, "gan_loop.py")
    assert code == 2
    assert report.get("effective_beta") is None
    assert report["error"].startswith(
        "Expected a VAE loss but the 3 losses computed inline (at lines 26-29, in the script's "
        "top-level loop; at lines 26-35, in the script's top-level loop; at lines 26-44, in the "
        "script's top-level loop) are none: they read output, real, and no posterior mean"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shape", "expected"), [("28,28,1", 1.0), ("3,16,16", 3.0)], ids=["mnist-hwc", "rgb-given-chw"]
)
def test_keras_io_train_step_under_a_gradient_tape(capsys, shape, expected):
    """The keras.io VAE's ``train_step`` as published: the loss under ``with tf.GradientTape()``,
    used by ``tape.gradient(total_loss, ...)``, in no loop. Its statements are those of
    ``frameworks/tf_keras_io_loss.py`` (with keras.ops for tf), whose betas the framework tests
    confirm by finite differences: Keras's BCE averages over the channel axis, so beta = C."""
    code, report = _check(capsys, "keras_io_train_step.py", "--input-shape", shape, "-B", "16", "-k", "2")
    assert code == 0, report
    assert report["framework"] == "tensorflow"
    assert report["input_shape"] == {"28,28,1": [28, 28, 1], "3,16,16": [16, 16, 3]}[shape]
    assert report["effective_beta"] == pytest.approx(expected, rel=1e-9)
    assert report["selected_because"].endswith("in VAE.train_step()")
    assert report["roles"] == {
        "data": "data",
        "recon": "reconstruction",
        "mu": "z_mean",
        "scale": "z_log_var",
    }


_KERAS_STATEMENTS = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import argparse
import numpy as np
import torch
from keras import ops as K  # the Keras 2 backend functions the file calls, under Keras 3's names
from keras.losses import binary_crossentropy

out = []
for B, D, k in json.loads(sys.argv[1]):
    g = np.random.default_rng(0)
    inputs = torch.from_numpy(g.random((B, D)))
    outputs = torch.from_numpy(0.05 + 0.9 * g.random((B, D)))
    z_mean = torch.from_numpy(g.standard_normal((B, k)))
    z_log_var = torch.from_numpy(0.3 * g.standard_normal((B, k)))
    args, original_dim, c = argparse.Namespace(mse=False), 784, 0.5
    keras = __import__("keras")
    exec(sys.argv[2])
    out.append([float(vae_loss), *(t.tolist() for t in (inputs, outputs, z_mean, z_log_var))])
print(json.dumps(out))
"""

SIZES = [(128, 784, 20), (16, 392, 5)]
"""Two (B, D, k) for the framework files: their statements run at both in one fresh process,
the check at the second (its fit varies B, D and k itself; each check starts the framework)."""


def _run_statements(program, statements, terms):
    """The file's own statements run at both sizes in a fresh process, with the reference
    NLL and KL of the same arrays: [(value, nll, kl)] (``terms`` gives them from the arrays)."""
    done = subprocess.run(
        [sys.executable, "-c", program, json.dumps(SIZES), statements],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = []
    for value, *arrays in json.loads(done.stdout.splitlines()[-1]):
        x, recon, mu, logvar = (torch.tensor(t, dtype=torch.float64) for t in arrays)
        q = Normal(mu, torch.exp(0.5 * logvar))
        kl = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum()
        out.append((value, float(terms(recon, x)), float(kl)))
    return out


@pytest.mark.slow
def test_keras_loss_under_the_main_guard_passed_to_add_loss(capsys):
    """The Keras 2.2 example's shape: the model built at the top level, the loss under the main
    guard (an ``if args.mse`` choice of the reconstruction term) and passed to ``vae.add_loss``.
    By hand: Keras's BCE is the mean over the D pixels, times original_dim = 784; the KL summed
    over k; both averaged over the batch: beta = (1/B) / (784/(B*D)) = D/784. Confirmed by the
    file's own statements run in Keras (torch backend) in a fresh process."""
    text = (HERE / "keras_main_guard_add_loss.py").read_text().splitlines()
    first = next(i for i, line in enumerate(text) if "if args.mse:" in line)
    last = next(i for i, line in enumerate(text) if "vae_loss = K.mean" in line)
    statements = "\n".join(line[4:] for line in text[first : last + 1])
    bernoulli = lambda recon, x: -Bernoulli(probs=recon, validate_args=False).log_prob(x).sum()  # noqa: E731
    for (B, D, _k), (value, nll, kl) in zip(SIZES, _run_statements(_KERAS_STATEMENTS, statements, bernoulli)):
        a, b = 784 / (B * D), 1 / B
        assert value == pytest.approx(a * nll + b * kl, rel=1e-6)  # Keras computes in float32
        assert b / a == D / 784

    B, D, k = SIZES[1]
    a, b = 784 / (B * D), 1 / B
    code, report = _check(capsys, "keras_main_guard_add_loss.py", "-B", str(B), "-D", str(D), "-k", str(k))
    assert code == 0, report
    assert report["framework"] == "keras (Keras 3 on its torch backend)"
    assert report["effective_beta"] == pytest.approx(b / a, rel=1e-9)
    assert report["effective_beta_formula"] == "D/784"
    assert report["selected_because"] == (
        "the only loss found: the loss computed inline at lines 66-76, under the script's main guard"
    )
    assert report["roles"] == {"data": "inputs", "recon": "outputs", "mu": "z_mean", "scale": "z_log_var"}
    assert "keras.losses.mse -> keras.losses.mean_squared_error" in report["keras2_supplied"]


@pytest.mark.slow
def test_keras_loss_built_with_the_model_and_given_to_add_loss(capsys):
    """Seed 5's shape: ``build_vae(c)`` builds the functional model, computes
    ``ops.mean(784 * BCE + c * KL)`` from its symbolic tensors and gives it to ``add_loss``; the
    layers and inputs are the loss's inputs, ``c`` a value to give. By hand: a = 784/(B*D),
    b = c/B: beta = c*D/784 (0.5 at D = 784 for c = 0.5). Confirmed by the file's own statements
    run in Keras."""
    text = (HERE / "keras_build_vae.py").read_text().splitlines()
    first = next(i for i, line in enumerate(text) if "reconstruction_loss = keras" in line)
    statements = "\n".join(line.strip() for line in text[first : first + 4])
    statements = statements.replace("ops.", "keras.ops.")
    bernoulli = lambda recon, x: -Bernoulli(probs=recon, validate_args=False).log_prob(x).sum()  # noqa: E731
    for (B, D, _k), (value, nll, kl) in zip(SIZES, _run_statements(_KERAS_STATEMENTS, statements, bernoulli)):
        a, b = 784 / (B * D), 0.5 / B
        assert value == pytest.approx(a * nll + b * kl, rel=1e-6)
        assert b / a == 0.5 * D / 784

    assert main(["check", str(HERE / "keras_build_vae.py")]) == 2
    assert capsys.readouterr().err == (
        "error: Expected values for the required argument(s) c of the loss computed inline at lines "
        "42-46, in build_vae() but got none. Try --arg c=VALUE.\n"
    )
    B, D, k = SIZES[1]
    code, report = _check(
        capsys, "keras_build_vae.py", "--arg", "c=0.5", "-B", str(B), "-D", str(D), "-k", str(k)
    )
    assert code == 0, report
    assert report["effective_beta"] == pytest.approx(0.5 * D / 784, rel=1e-9)
    assert report["effective_beta_formula"] == "D/1568"
    assert report["roles"] == {"data": "inputs", "recon": "outputs", "mu": "z_mean", "scale": "z_log_var"}


@pytest.mark.slow
def test_keras_terms_returned_by_a_model_building_function(capsys):
    """A ``build_model()`` returning ``vae, encoder, decoder, reconstruction_loss, kl_loss``,
    weighed by the script (``add_loss(ops.mean(reconstruction_loss + c * kl_loss))`` in its loop):
    the terms are read apart. By hand (the same statements as keras_build_vae.py): the
    reconstruction 784 * BCE mean over pixels, per sample (a = 784/(B*D) once averaged over the
    batch), the KL summed per sample (b = 1/B): the terms' beta D/784. The script's own sum of
    terms made elsewhere is not mistaken for a loss of the model's tensors."""
    B, D, k = SIZES[1]
    sizes = ["-B", str(B), "-D", str(D), "-k", str(k)]
    code, report = _check(capsys, "keras_build_model_terms.py", *sizes)
    assert code == 0, report
    assert report["selected_because"].startswith(
        "the loss computed inline at lines 41-44, returned (reconstruction_loss, kl_loss) by build_model(): "
    )
    assert report["returns"]["form"] == "components"
    assert report["effective_beta"] == pytest.approx(D / 784, rel=1e-9)
    [other] = report["other_candidates"]
    assert (other["name"], other["described"]) == (
        "53",
        "the loss computed inline at line 53, in the script's top-level loop",
    )

    assert main(["check", f"{HERE / 'keras_build_model_terms.py'}:53"]) == 2
    assert (
        "at line 53, in the script's top-level loop, takes its terms from statements before it: kl_loss at "
        "line 52 (`vae, encoder, decoder, reconstruction_loss, kl_loss = build_model()`)"
    ) in capsys.readouterr().err
    assert main(["check", f"{HERE / 'keras_build_model_terms.py'}:7"]) == 2
    assert capsys.readouterr().err.endswith("computes inline start at lines 41, 53. Try one of them.\n")


_TF_STATEMENTS = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf
from tensorflow import keras

out = []
for B, D, k in json.loads(sys.argv[1]):
    g = np.random.default_rng(0)
    inputs = tf.constant(g.random((B, D)), tf.float32)
    reconstructed = tf.constant(0.05 + 0.9 * g.random((B, D)), tf.float32)
    z_mean = tf.constant(g.standard_normal((B, k)), tf.float32)
    z_log_var = tf.constant(0.3 * g.standard_normal((B, k)), tf.float32)
    exec(sys.argv[2])
    loss = keras.losses.MeanSquaredError()(inputs, reconstructed) + kl_loss  # as fit sums them
    arrays = (inputs, reconstructed, z_mean, z_log_var)
    out.append([float(loss), *(np.asarray(t, dtype=np.float64).tolist() for t in arrays)])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_keras_model_adding_its_kl_in_call_and_compiled_with_a_loss(capsys):
    """TensorFlow's subclassing guide's VAE: ``self.add_loss(kl_loss)`` in ``call``, and
    ``compile(optimizer, loss=keras.losses.MeanSquaredError())``: fit trains on their sum. By
    hand: the MSE averages over batch and pixels, twice the unit Gaussian's NLL (a = 2/(B*D)); the
    KL term ``-0.5 * reduce_mean(...)`` averages over batch and latents (b = 1/(B*k)):
    beta = D/(2k). Confirmed by the file's own statements and Keras's loss object in TensorFlow."""
    text = (HERE / "tf_guide_add_loss.py").read_text().splitlines()
    first = next(i for i, line in enumerate(text) if "kl_loss = -0.5" in line)
    half_squares = lambda recon, x: 0.5 * ((x - recon) ** 2).sum()  # noqa: E731 - the unit Gaussian's NLL
    runs = _run_statements(_TF_STATEMENTS, text[first].strip(), half_squares)
    for (B, D, k), (value, nll, kl) in zip(SIZES, runs):
        assert value == pytest.approx(2 / (B * D) * nll + kl / (B * k), rel=1e-5)  # float32

    B, D, k = SIZES[1]
    code, report = _check(capsys, "tf_guide_add_loss.py", "-B", str(B), "-D", str(D), "-k", str(k))
    assert code == 0, report
    assert report["effective_beta"] == pytest.approx(D / (2 * k), rel=1e-9)
    assert report["effective_beta_formula"] == "D/(2*k)"
    assert report["selected_because"].endswith(
        "in VariationalAutoEncoder.call(), given to add_loss, plus the loss given to compile at line 64 "
        "(`keras.losses.MeanSquaredError()`)"
    )
    assert {f["code"]: f["line"] for f in report["findings"]}["beta-depends-on-latent-dim"] == 54


_KL_LAYER = """
import importlib.util, json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras
import torch
from keras import ops

# Keras 2's backend functions the file's nll calls, under their Keras 3 names (written here, apart
# from vaeloss's own supply of them)
keras.backend.sum, keras.backend.binary_crossentropy = ops.sum, ops.binary_crossentropy
spec = importlib.util.spec_from_file_location("keras_kl_layer", sys.argv[3])
module = importlib.util.module_from_spec(spec)
try:
    spec.loader.exec_module(module)  # the file's Keras 2 calls may fail past nll: not needed here
except Exception:
    pass
out = []
for B, D, k in json.loads(sys.argv[1]):
    g = np.random.default_rng(0)
    x, recon = g.random((B, D)), 0.05 + 0.9 * g.random((B, D))
    mu, log_var = g.standard_normal((B, k)), 0.3 * g.standard_normal((B, k))
    t = {n: torch.from_numpy(a) for n, a in (("x", x), ("recon", recon), ("mu", mu), ("log_var", log_var))}
    kl_batch = -0.5 * ops.sum(1 + t["log_var"] - ops.square(t["mu"]) - ops.exp(t["log_var"]), axis=-1)
    value = ops.mean(module.nll(t["x"], t["recon"])) + ops.mean(kl_batch)  # fit: mean of nll, + add_loss
    out.append([float(value), x.tolist(), recon.tolist(), mu.tolist(), log_var.tolist()])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_keras_kl_layer_plus_the_compiled_nll(capsys):
    """An identity layer adds the KL with ``self.add_loss`` in its ``call``; the model is compiled
    with ``loss=nll`` (the Bernoulli NLL summed over pixels): fit trains on ``mean(nll) + KL``.
    By hand: a = 1/B, b = 1/B: the ELBO, beta 1. Confirmed with the file's own ``nll`` in Keras."""
    done = subprocess.run(
        [sys.executable, "-c", _KL_LAYER, json.dumps(SIZES), "", str(HERE / "keras_kl_layer.py")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for (B, _D, _k), (value, *arrays) in zip(SIZES, json.loads(done.stdout.splitlines()[-1])):
        x, recon, mu, logvar = (torch.tensor(a, dtype=torch.float64) for a in arrays)
        nll = -Bernoulli(probs=recon, validate_args=False).log_prob(x).sum()
        kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum()
        assert value == pytest.approx(float(nll / B + kl / B), rel=1e-5)

    B, D, k = SIZES[1]
    code, report = _check(capsys, "keras_kl_layer.py", "-B", str(B), "-D", str(D), "-k", str(k))
    assert code == 0, report
    assert report["effective_beta"] == pytest.approx(1.0, rel=1e-9)
    assert report["roles"] == {"mu": "inputs[0]", "scale": "inputs[1]", "recon": "y_pred", "data": "y_true"}
    assert (
        "in KLDivergenceLayer.call(), given to add_loss, plus the loss given to compile"
        in (report["selected_because"])
    )


_JAX_STATEMENTS = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
import optax

out = []
for B, D, k in json.loads(sys.argv[1]):
    g = np.random.default_rng(0)
    batch = jnp.asarray((g.random((B, D)) > 0.5).astype(np.float64))
    logits = jnp.asarray(2 * g.standard_normal((B, D)))
    mean = jnp.asarray(g.standard_normal((B, k)))
    logvar = jnp.asarray(0.3 * g.standard_normal((B, k)))
    kl_weight = 0.5
    exec(sys.argv[2])
    out.append([float(loss), *(np.asarray(t).tolist() for t in (batch, logits, mean, logvar))])
print(json.dumps(out))
"""


def test_flax_closure_differentiated_by_value_and_grad(capsys):
    """A jitted ``train_step`` whose ``loss_fn(params)`` closure calls the flax module's apply and
    returns ``loss, (rec, kld)`` to ``jax.value_and_grad(loss_fn, has_aux=True)``. By hand: the
    sigmoid BCE summed over pixels and the KL over latents, both batch means, the KL times the
    default kl_weight=0.5: beta = 0.5. Confirmed by the file's own statements run in JAX (x64)."""
    text = (HERE / "flax_train_step.py").read_text().splitlines()
    first = next(i for i, line in enumerate(text) if "rec = optax" in line)
    statements = "\n".join(line.strip() for line in text[first : first + 3])
    logits_nll = lambda logits, x: -Bernoulli(logits=logits).log_prob(x).sum()  # noqa: E731
    for (B, _D, _k), (value, nll, kl) in zip(SIZES, _run_statements(_JAX_STATEMENTS, statements, logits_nll)):
        assert value == pytest.approx(nll / B + 0.5 * kl / B, rel=1e-12)

    B, D, k = SIZES[1]
    a, b = 1 / B, 0.5 / B
    code, report = _check(capsys, "flax_train_step.py", "-B", str(B), "-D", str(D), "-k", str(k))
    assert code == 0, report
    assert report["framework"] == "jax"
    assert report["effective_beta"] == pytest.approx(b / a, rel=1e-9)
    assert report["kl_weight_parameter"] == "kl_weight"
    assert report["selected_because"] == (
        "the only loss found: the loss computed inline at lines 58-61, in loss_fn() of train_step(), "
        "differentiated by jax.value_and_grad"
    )
    assert report["roles"] == {"data": "batch", "recon": "logits", "mu": "mean", "scale": "logvar"}
    # FILE:train_step names it (the function holding the closure); told statically
    [name], why, explicit = select(read_static(read_source_file(HERE / "flax_train_step.py")), "train_step")
    assert (name, explicit) == (report["function"], True) and why.endswith("in 'train_step' as named")


def test_flax_loss_fn_of_params_calling_the_modules_apply(capsys):
    """``loss_fn(params, batch, rng, beta=1.0)`` in a losses module (its train.py differentiates it
    elsewhere) calls the sibling module's ``model.apply`` and returns ``loss, aux``: read from the
    module's outputs. By hand: optax's elementwise BCE averaged over batch and pixels
    (a = 1/(B*D)) + the summed KL averaged over the batch (b = 1/B): beta D."""
    text = (HERE / "flax_losses.py").read_text().splitlines()
    first = next(i for i, line in enumerate(text) if "rec = optax" in line)
    statements = "\n".join(line.strip() for line in text[first : first + 2]).replace("recon_logits", "logits")
    statements += "\nloss = rec + kl"
    logits_nll = lambda logits, x: -Bernoulli(logits=logits).log_prob(x).sum()  # noqa: E731
    for (B, D, _k), (value, nll, kl) in zip(SIZES, _run_statements(_JAX_STATEMENTS, statements, logits_nll)):
        assert value == pytest.approx(nll / (B * D) + kl / B, rel=1e-12)

    B, D, k = SIZES[1]
    code, report = _check(capsys, "flax_losses.py", "-B", str(B), "-D", str(D), "-k", str(k))
    assert code == 0, report
    assert report["effective_beta"] == pytest.approx(D, rel=1e-9)
    assert report["effective_beta_formula"] == "D"
    assert report["selected_because"] == (
        "the only loss found: the loss computed inline at lines 14-16, returned by loss_fn(), from the "
        "model's outputs"
    )
    assert report["roles"] == {"data": "batch", "recon": "recon_logits", "mu": "mean", "scale": "logvar"}


_MLX_STATEMENTS = """
import json, sys
import mlx.core as mx
import mlx.nn as nn
import numpy as np

out = []
for B, D, k in json.loads(sys.argv[1]):
    g = np.random.default_rng(0)
    X = mx.array(g.random((B, D)), dtype=mx.float64)
    X_recon = mx.array(0.05 + 0.9 * g.random((B, D)), dtype=mx.float64)
    mu = mx.array(g.standard_normal((B, k)), dtype=mx.float64)
    logvar = mx.array(0.3 * g.standard_normal((B, k)), dtype=mx.float64)
    exec(sys.argv[2])
    loss = recon_loss + kl_div
    out.append([float(loss.item()), *(np.asarray(t).tolist() for t in (X, X_recon, mu, logvar))])
print(json.dumps(out))
"""


def test_mlx_loss_fn_differentiated_by_value_and_grad(capsys):
    """Apple's mlx-examples shape: ``loss_fn(model, X)`` calls the model and is differentiated by
    ``nn.value_and_grad(model, loss_fn)``. By hand: MLX's squared error summed over pixels and
    batch is twice the unit Gaussian's NLL (a = 2), the KL summed (b = 1): beta 1/2. Confirmed by
    the file's own statements run in MLX (float64, its exp to about float32's precision)."""
    if importlib.util.find_spec("mlx") is None:  # not imported here: its native library
        pytest.skip("mlx is not installed (pip install 'vaeloss[mlx]')")
    text = (HERE / "mlx_train.py").read_text().splitlines()
    first = next(i for i, line in enumerate(text) if "recon_loss = nn.losses" in line)
    statements = "\n".join(
        line.strip() for line in text[first : first + 3] if not line.strip().startswith("#")
    )
    half_squares = lambda recon, x: 0.5 * ((x - recon) ** 2).sum()  # noqa: E731 - the unit Gaussian's NLL
    for (_B, _D, _k), (value, nll, kl) in zip(
        SIZES, _run_statements(_MLX_STATEMENTS, statements, half_squares)
    ):
        assert value == pytest.approx(2 * nll + kl, rel=1e-6)

    B, D, k = SIZES[1]
    code, report = _check(capsys, "mlx_train.py", "-B", str(B), "-D", str(D), "-k", str(k))
    assert code == 0, report
    assert report["framework"] == "mlx"
    assert report["effective_beta"] == pytest.approx(0.5, rel=1e-9)
    assert report["likelihood"] == "gaussian"
    assert report["roles"] == {"data": "X", "recon": "X_recon", "mu": "mu", "scale": "logvar"}
    assert report["selected_because"].startswith(
        "the loss computed inline at lines 35-38, in loss_fn(), differentiated by nn.value_and_grad: "
    )
    assert [o["name"] for o in report["other_candidates"]] == ["train_epoch"]  # not loss_fn itself


@pytest.mark.parametrize("beta", [1.0, 4.0], ids=["default", "init"])
def test_numpy_vae_with_a_hand_written_backward(capsys, beta):
    """A NumPy VAE whose ``train()`` loop computes the loss, logs it and calls its own backward
    pass: nothing is differentiated, so the loop's last ``loss = ...`` is the loss. By hand:
    BCE and KL summed, both divided by the batch size, the KL times ``self.beta`` (1.0 by
    default): beta = self.beta. Confirmed by the loop's own statements run in NumPy."""
    B, D, k = 32, 784, 20
    recon, x, mu, logvar, kl = _terms(B, D, k)

    class Self:
        pass

    me = Self()
    me.beta = beta
    arrays = {"x_hat": recon.numpy(), "x": x.numpy(), "mu": mu.numpy(), "logvar": logvar.numpy()}
    ns = {"np": np, "self": me, **arrays}
    text = (HERE / "numpy_vae.py").read_text()
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "bce = -np.sum" in line)
    exec("\n".join(line.strip() for line in lines[first : first + 3]), ns)
    nll = -Bernoulli(probs=recon, validate_args=False).log_prob(x).sum()
    a, b = 1 / B, beta / B
    assert float(ns["loss"]) == pytest.approx(float(a * nll + b * kl), rel=1e-12)

    init = ["--init", f"beta={beta}"] if beta != 1.0 else []
    code, report = _check(capsys, "numpy_vae.py", "-B", str(B), *init)
    assert code == 1  # probabilities of exactly 0 and 1 give nan/inf: an error finding
    assert report["framework"] == "numpy"
    assert report["effective_beta"] == pytest.approx(b / a, rel=1e-9)
    assert report["function"].startswith("VAE._vaeloss_inline_")
    built = "beta=4.0" if init else ""
    assert report["described"] == (
        f"the loss computed inline at lines 55-57, in the loop of VAE.train(), on VAE({built}) as built "
        f"by vaeloss, reading self.beta={beta!r} (--init NAME=VALUE to build it otherwise)"
    )
    assert {f["code"] for f in report["findings"]} >= {"non-finite-at-edges"}


_TF_MONTE_CARLO = """
import importlib.util, json, os, sys
import numpy as np
import tensorflow as tf

spec = importlib.util.spec_from_file_location("tf_cvae_tutorial", sys.argv[3])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)  # the model is built under the main guard: defines only
log_normal_pdf = module.log_normal_pdf
out = []
for B, shape, k in json.loads(sys.argv[1]):
    g = np.random.default_rng(0)
    x = tf.constant((g.random((B, *shape)) > 0.5).astype(np.float32))
    x_logit = tf.constant(g.standard_normal((B, *shape)), tf.float32)
    mean = tf.constant(g.standard_normal((B, k)), tf.float32)
    logvar = tf.constant(0.3 * g.standard_normal((B, k)), tf.float32)
    values = []
    for _ in range(int(sys.argv[4])):  # the expectation over z ~ q(z|x), as the model samples it
        z = mean + tf.exp(0.5 * logvar) * tf.constant(g.standard_normal((B, k)), tf.float32)
        exec(sys.argv[2])
        values.append(float(loss))
    arrays = (x, x_logit, mean, logvar)
    out.append([float(np.mean(values)), float(np.std(values) / np.sqrt(len(values))),
                *(np.asarray(t, dtype=np.float64).tolist() for t in arrays)])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_tensorflow_cvae_tutorial_monte_carlo_elbo_on_the_models_z(capsys):
    """TensorFlow's CVAE tutorial: ``compute_loss(model, x)`` is the one-sample estimate
    -(log p(x|z) + log p(z) - log q(z|x)) at the z the model samples, averaged over the batch.
    By hand: the BCE on logits summed over pixels (a = 1/B) and, in expectation over z ~ q,
    log q - log p is the Gaussian KL summed over latents (b = 1/B): beta 1. Confirmed by the
    file's own statements run in TensorFlow over 4000 draws of z at two sizes (to 4 standard
    errors). The check draws z from the posterior it passes (the sample moves with each seed)."""
    text = (HERE / "tf_cvae_tutorial.py").read_text().splitlines()
    first = next(i for i, line in enumerate(text) if "cross_ent = " in line)
    last = next(i for i in range(first, len(text)) if text[i].strip().startswith("return"))
    statements = "\n".join(line.strip() for line in text[first : last + 1]).replace("return ", "loss = ")
    sizes = [(64, (8, 8, 1), 8), (16, (6, 4, 1), 3)]
    file = str(HERE / "tf_cvae_tutorial.py")
    done = subprocess.run(
        [sys.executable, "-c", _TF_MONTE_CARLO, json.dumps(sizes), statements, file, "4000"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for (B, _shape, _k), (value, se, *arrays) in zip(sizes, json.loads(done.stdout.splitlines()[-1])):
        x, logits, mu, logvar = (torch.tensor(t, dtype=torch.float64) for t in arrays)
        nll = -Bernoulli(logits=logits).log_prob(x).sum()
        kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum()
        assert abs(value - float(nll / B + kl / B)) < 4 * se + 1e-4 * abs(value)

    code, report = _check(capsys, "tf_cvae_tutorial.py", "-B", "64", "-k", "8", "--input-shape", "8,8,1")
    assert code == 0, report
    assert report["effective_beta"] == pytest.approx(1.0, rel=0.05)  # a fit in expectation
    assert report["effective_beta_formula"] == "1"
    assert report["monte_carlo_kl"] is True
    assert report["roles"] == {"data": "x", "recon": "x_logit", "mu": "mean", "scale": "logvar", "z": "z"}
    assert report["selected_because"] == (
        "the only loss found: the loss computed inline at lines 66-70, returned by compute_loss(), from the "
        "model's outputs"
    )


def test_an_argparse_value_the_loss_reads_is_set_with_arg_object_attribute(capsys):
    """``--arg args.kl_weight=0.25`` (it was refused): mean BCE over B*D (a = 1/(B*D)) + 0.25 *
    summed KL: beta 0.25 * B * D; the value is said among the parameters used."""
    code, report = _check(capsys, "script_loop.py", "--arg", "args.kl_weight=0.25", "-B", "16")
    assert code == 1  # beta depends on B
    assert report["effective_beta"] == pytest.approx(0.25 * 16 * 784, rel=1e-9)
    assert report["defaults"]["args.kl_weight"] == 0.25


def test_an_attribute_of_an_object_the_file_does_not_define_is_exit_2(capsys):
    code = main(["check", str(HERE / "script_loop.py"), "--arg", "opts.kl_weight=0.25"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(
        "error: Expected a module-level object to set --arg opts.kl_weight= on but got 'opts', which "
        "script_loop.py does not define at its top level after loading."
    )
