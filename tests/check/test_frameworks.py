"""`vaeloss check` on Keras, TensorFlow, JAX and NumPy files as people write them
(``tests/check/frameworks/``: the Keras blog's script and a Keras 2 notebook as written, a
Keras 3 script, a keras.io-style TensorFlow loss, the flax example's ``compute_metrics``, an
optax loss, a NumPy reference).

Each beta is derived by hand in ``CASES`` and confirmed by finite differences of the user's
own function in its own framework (``frameworks/finite_differences.py``, a fresh process per
framework), at two sizes: the check runs at the first and its formula is evaluated at the
second. Slow: each framework's import takes seconds (TensorFlow about 8 s).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from vaeloss.cli import main

HERE = Path(__file__).parent / "frameworks"


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    arrays: str  # how finite_differences.py makes arrays: keras-torch, tensorflow(32), jax, mlx, numpy
    framework: str  # what the check says
    params: dict[str, str]  # parameter -> role (recon, data, mu, logvar)
    free: dict[str, str]  # module-level names the loss reads -> role
    decoder: str  # probabilities, logits, mean
    sizes: tuple[tuple[int, tuple[int, ...], int], ...]  # (B, one sample's shape, k), two of them
    beta: str  # the hand-derived effective beta, in B, D, k (D = the product of the shape)
    attributes: tuple[tuple[str, str], ...] = ()  # attributes of self the loss reads -> role


KERAS = "keras (Keras 3 on its torch backend)"
BLOG = {"x": "data", "x_decoded_mean": "recon"}
LATENTS = {"z_mean": "mu", "z_log_var": "logvar"}
ROLES = {"data": "data", "reconstruction": "recon", **LATENTS}
CASES = {
    # BCE averaged over pixels + KL averaged over latent dims, one value per sample: D/k
    "keras-blog-script": Case(
        "keras_blog_vae.py", "vae_loss", "keras-torch", KERAS, BLOG,
        {"z_mean": "mu", "z_log_sigma": "logvar"},
        "probabilities", ((100, (784,), 2), (32, (196,), 5)), "D / k",
    ),
    # original_dim (784) * mean BCE + summed KL, mean over the batch: (D/784) at D = 784 is 1
    "keras2-notebook-layer": Case(
        "keras2_custom_layer.ipynb", "CustomVariationalLayer.vae_loss", "keras-torch", KERAS, BLOG, LATENTS,
        "probabilities", ((100, (784,), 2), (16, (196,), 3)), "D / 784",
    ),
    # the same loss reading the latents from self (a Keras 3 loss layer): D / 784
    "keras3-loss-layer-self": Case(
        "keras_loss_layer.py", "VAELossLayer.vae_loss", "keras-torch", KERAS, BLOG, {},
        "probabilities", ((64, (784,), 2), (16, (196,), 3)), "D / 784", tuple(LATENTS.items()),
    ),
    # c * KL with c = 0.5 and the docs' 784 * mean BCE: c * D / 784
    "keras3-kl-weight-c": Case(
        "keras_kl_weight.py", "vae_loss", "keras-torch", KERAS,
        {"inputs": "data", "outputs": "recon", **LATENTS}, {},
        "probabilities", ((128, (784,), 2), (16, (196,), 5)), "0.5 * D / 784",
    ),
    # keras.losses.binary_crossentropy means over the last (channel) axis, summed over H, W:
    # beta = channels (1 on MNIST)
    "tensorflow-keras-io-1-channel": Case(
        "tf_keras_io_loss.py", "compute_loss", "tensorflow", "tensorflow", ROLES, {},
        "probabilities", ((16, (28, 28, 1), 2), (8, (12, 10, 1), 4)), "1",
    ),
    "tensorflow-keras-io-rgb": Case(
        "tf_keras_io_loss.py", "compute_loss", "tensorflow", "tensorflow", ROLES, {},
        "probabilities", ((16, (16, 16, 3), 2), (8, (8, 12, 3), 4)), "3",
    ),
    # TensorFlow's CVAE tutorial's log-densities (float32 constants: run on float32 tensors): the
    # unit Gaussian's NLL summed per sample + the summed KL, averaged over the batch: the ELBO
    "tensorflow-float32-constants": Case(
        "tf_float32_constants.py", "compute_loss", "tensorflow32", "tensorflow",
        {"x_mean": "recon", "x": "data", "z_mean": "mu", "z_log_var": "logvar"}, {},
        "mean", ((16, (784,), 2), (8, (64,), 4)), "1",
    ),
    # summed BCE on logits + summed KL, each vmapped per sample and averaged: the ELBO
    "flax-compute-metrics": Case(
        "flax_train.py", "compute_metrics", "jax", "jax",
        {"recon_x": "recon", "x": "data", "mean": "mu", "logvar": "logvar"}, {},
        "logits", ((16, (784,), 20), (8, (64,), 3)), "1",
    ),
    # optax's elementwise BCE averaged over batch and pixels + summed KL averaged: D
    "jax-optax-mean": Case(
        "jax_optax_loss.py", "loss_fn", "jax", "jax",
        {"logits": "recon", "batch": "data", "mu": "mu", "log_var": "logvar"}, {},
        "logits", ((16, (784,), 20), (8, (64,), 3)), "D",
    ),
    # the Keras blog's shape in JAX: BCE summed over pixels + KL averaged over latent dims, per
    # sample, averaged over the batch (a = 1/B, b = 1/(B k)); the latents module-level arrays: 1/k
    "jax-module-level-latents": Case(
        "jax_module_latents.py", "vae_loss", "jax", "jax", {"x": "data", "x_decoded": "recon"}, LATENTS,
        "probabilities", ((100, (784,), 2), (16, (64,), 5)), "1 / k",
    ),
    # BCE on logits summed over pixels, averaged over the batch (a = 1/B) + the KL summed over
    # everything (b = 1), with a Python branch on the KL's value (not traceable): B
    "jax-untraceable-branch": Case(
        "jax_untraceable.py", "vae_loss", "jax", "jax",
        {"logits": "recon", "x": "data", "mu": "mu", "logvar": "logvar"}, {},
        "logits", ((16, (784,), 20), (8, (64,), 3)), "B",
    ),
    # MLX's BCE on logits, its default reduction the mean over batch and pixels (a = 1/(B*D)),
    # + summed KL averaged over the batch (b = 1/B): D
    "mlx-mean-bce": Case(
        "mlx_loss.py", "vae_loss", "mlx", "mlx",
        {"logits": "recon", "x": "data", "mu": "mu", "logvar": "logvar"}, {},
        "logits", ((16, (784,), 20), (8, (64,), 3)), "D",
    ),
    # summed squared error + summed KL: a unit-variance Gaussian's NLL is half of it: 1/2
    "numpy-reference": Case(
        "numpy_loss.py", "vae_loss", "numpy", "numpy",
        {"x_hat": "recon", "x": "data", "mu": "mu", "logvar": "logvar"}, {},
        "mean", ((16, (8,), 2), (4, (20,), 3)), "1 / 2",
    ),
}  # fmt: skip


def _value(formula: str, B: int, shape: tuple[int, ...], k: int) -> float:
    return float(
        eval(formula.replace("^", "**"), {"__builtins__": {}}, {"B": B, "D": math.prod(shape), "k": k})
    )


def _spec(case: Case) -> dict:
    return {
        "file": str(HERE / case.file),
        "name": case.name,
        "arrays": case.arrays,
        "params": case.params,
        "free": case.free,
        "attributes": dict(case.attributes),
        "decoder": case.decoder,
        "cases": [[B, list(shape), k] for B, shape, k in case.sizes],
    }


@cache
def _process(arrays: str) -> str:
    """The fresh process a case's finite differences run in: one per framework (TensorFlow's in
    float64 and in float32 share one)."""
    return arrays.removesuffix("32")


def _finite_differences_of(process: str) -> dict[str, tuple[float, ...]]:
    """The betas by finite differences of every case of one framework, in one fresh process."""
    ids = [i for i, c in CASES.items() if _process(c.arrays) == process]
    out = subprocess.run(
        [sys.executable, str(HERE / "finite_differences.py"), json.dumps([_spec(CASES[i]) for i in ids])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(zip(ids, map(tuple, json.loads(out.stdout.strip().splitlines()[-1]))))


def _finite_differences(case_id: str) -> tuple[float, ...]:
    return _finite_differences_of(_process(CASES[case_id].arrays))[case_id]


def _check(case: Case, capsys: pytest.CaptureFixture[str]) -> dict:
    B, shape, k = case.sizes[0]
    args = ["check", f"{HERE / case.file}:{case.name}", "-B", str(B), "-k", str(k), "--json"]
    args += ["--input-shape", ",".join(map(str, shape))] if len(shape) > 1 else ["-D", str(shape[0])]
    main(args)
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case_id",
    # one framework's cases on one pytest worker: its finite differences run once, in one process
    [pytest.param(i, marks=pytest.mark.xdist_group(_process(c.arrays))) for i, c in CASES.items()],
)
def test_framework_loss_as_written(case_id, capsys):
    case = CASES[case_id]
    expected = [_value(case.beta, *size) for size in case.sizes]
    by_hand_check = _finite_differences(case_id)
    # the hand derivation is right: the user's own function agrees, at both sizes (to float32's
    # rounding where Keras on torch reduces in float32 and where MLX computes exp)
    coarse = case.arrays in ("keras-torch", "mlx", "tensorflow32")  # float32; MLX's float64 exp
    assert by_hand_check == pytest.approx(expected, rel=2e-3 if coarse else 1e-6)
    report = _check(case, capsys)
    assert report["framework"] == case.framework
    assert "no-gradient" not in {f["code"] for f in report["findings"]}  # jax.jit(grad), GradientTape...
    assert report["effective_beta"] == pytest.approx(expected[0], rel=1e-9)
    formula = report["effective_beta_formula"]
    assert formula is not None, report["findings"]
    assert _value(formula, *case.sizes[1]) == pytest.approx(expected[1], rel=1e-9), formula


_COMPUTE_LOSS = """
import importlib.util, json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import torch

spec = importlib.util.spec_from_file_location("keras_compute_loss", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = []
for B, D, k, beta in json.loads(sys.argv[2]):
    g = np.random.default_rng(0)
    x, recon = g.random((B, D)), 0.05 + 0.9 * g.random((B, D))
    mu, logvar = g.standard_normal((B, k)), 0.3 * g.standard_normal((B, k))
    t_x, t_recon, t_mu, t_logvar = (torch.from_numpy(a) for a in (x, recon, mu, logvar))
    value = module.VAE(latent_dim=k, beta=beta).compute_loss(x=t_x, y_pred=(t_mu, t_logvar, t_recon))
    out.append([float(value), x.tolist(), recon.tolist(), mu.tolist(), logvar.tolist()])
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.xdist_group("keras-torch")
def test_keras_compute_loss_override(capsys):
    """``VAE.compute_loss(x=None, y=None, y_pred=None, ...)`` is found without naming it, called with
    the batch as x and the model's outputs as y_pred (unpacked by its own names). By hand: BCE
    summed per sample (a = 1/B) + beta * KL summed per sample (b = beta/B): beta = self.beta.
    Confirmed by the method itself run in Keras at two sizes and two betas."""
    import subprocess
    import sys

    import torch
    from torch.distributions import Bernoulli, Normal, kl_divergence

    sizes = [(16, 784, 2, 1.0), (8, 64, 3, 2.0)]
    done = subprocess.run(
        [sys.executable, "-c", _COMPUTE_LOSS, str(HERE / "keras_compute_loss.py"), json.dumps(sizes)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for (B, _D, _k, beta), (value, *arrays) in zip(sizes, json.loads(done.stdout.splitlines()[-1])):
        x, recon, mu, logvar = (torch.tensor(a, dtype=torch.float64) for a in arrays)
        nll = -Bernoulli(probs=recon, validate_args=False).log_prob(x).sum()
        kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum()
        assert value == pytest.approx(float(nll / B + beta * kl / B), rel=1e-5)  # Keras: float32

    assert (
        main(["check", str(HERE / "keras_compute_loss.py"), "--json", "-B", "8", "--init", "beta=2.0"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["function"] == "VAE.compute_loss"
    assert report["effective_beta"] == pytest.approx(2.0, rel=1e-9)
    assert report["roles"] == {"mu": "y_pred[0]", "scale": "y_pred[1]", "recon": "y_pred[2]", "data": "x"}


@pytest.mark.slow
@pytest.mark.xdist_group("keras-torch")
def test_the_keras_blog_script_is_checked_at_its_own_sizes(capsys):
    """No sizes given: the blog's own (batch_shape (100, 784), latent_dim = 2) are read from the
    loaded file, so its D/k is 392, as the finite differences of its own function give at those
    sizes (not 39.2 at vaeloss's B=128, D=784, k=20)."""
    assert main(["check", str(HERE / "keras_blog_vae.py"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sizes"] == {"B": 100, "D": 784, "k": 2}
    blog = CASES["keras-blog-script"]
    assert blog.sizes[0] == (100, (784,), 2)
    assert report["effective_beta"] == pytest.approx(_finite_differences("keras-blog-script")[0], rel=2e-3)
    assert report["effective_beta"] == pytest.approx(392.0, rel=1e-9)
    origins = {s["name"]: s["origin"] for s in report["observed"]["sizes"]}
    assert origins == {
        "B": "the first dim of z_log_sigma, z_mean (the model's batch_shape)",
        "D": "the input of vae, the model compiled with this loss: [100, 784]",
        "k": "the width of z_log_sigma, z_mean, which the loss reads: [100, 2]",
    }


@pytest.mark.slow
@pytest.mark.xdist_group("keras-torch")
def test_a_keras_closure_without_batch_shape_takes_fit_s_batch_size(tmp_path, capsys):
    """``Input(shape=...)`` leaves B open: fit's batch_size gives it, else Keras's default 32."""
    blog = (HERE / "keras_blog_vae.py").read_text()
    shaped = blog.replace("Input(batch_shape=(batch_size, original_dim))", "Input(shape=(original_dim,))")
    shaped = shaped.replace("latent_dim = 2", "latent_dim = 8").replace(
        "K.random_normal(shape=(batch_size, latent_dim)", "K.random_normal(shape=K.shape(z_mean)"
    )
    for name, text, B, origin in (
        (
            "default.py",
            shaped.replace(" batch_size=batch_size,", ""),
            32,
            "fit at line 58 gives no batch_size: Keras's default",
        ),
    ):  # fit's own batch_size=batch_size: _fit_batch_size's doctest
        path = tmp_path / name
        path.write_text(text)
        assert main(["check", str(path), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["sizes"] == {"B": B, "D": 784, "k": 8}
        assert report["effective_beta"] == pytest.approx(784 / 8, rel=1e-9)  # D/k
        assert {s["name"]: s["origin"] for s in report["observed"]["sizes"]}["B"] == origin
