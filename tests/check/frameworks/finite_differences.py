"""The effective beta of a user's loss by finite differences of the user's own function, in its
own framework: run by ``tests/check/test_frameworks.py`` in a fresh process per framework (so
that each gets its own Keras backend), printing one JSON list of betas.

For a loss ``L = a * NLL + b * KL + c`` (NLL and KL summed over the batch and every dim),
moving the reconstructions by ``delta`` changes it by ``a`` times the change of the NLL, and
moving the posterior means by ``delta`` by ``b`` times the change of the KL (whose mean part
is ``mu^2 / 2`` in every parameterisation of the scale). Both changes of the reference terms
are computed here by hand in NumPy; the loss's changes are the user's function's. The betas
``b / a`` are what the tests compare with ``vaeloss check`` and with the hand derivation.

Usage: python finite_differences.py '<json list of specs>' (one framework's losses; prints a list
of lists of betas).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

SPECS = json.loads(sys.argv[1])  # losses of one framework, each as below
SPEC = SPECS[0]
if SPEC["arrays"] == "keras-torch":
    os.environ["KERAS_BACKEND"] = "torch"
elif SPEC["arrays"] in ("tensorflow", "tensorflow32"):
    os.environ["KERAS_BACKEND"] = "tensorflow"


def to_array(value):
    kind = SPEC["arrays"]
    if kind == "keras-torch":
        import torch

        return torch.from_numpy(value)
    if kind in ("tensorflow", "tensorflow32"):
        import tensorflow as tf

        return tf.constant(value, dtype=tf.float32 if kind == "tensorflow32" else tf.float64)
    if kind == "mlx":
        import mlx.core as mx

        return mx.array(value, dtype=mx.float64)
    if kind == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax.numpy.asarray(value)
    return value


def to_float(out, batch):
    if isinstance(out, dict):
        out = out["loss"]
    if hasattr(out, "detach"):
        out = out.detach()
    arr = np.asarray(out, dtype=np.float64)
    return float(arr.mean()) if arr.shape == (batch,) else float(arr.reshape(()))


def nll(r, x, decoder):
    """The reference NLL summed over everything (constants dropped: only its changes count)."""
    if decoder == "probabilities":
        return float(-(x * np.log(r) + (1 - x) * np.log(1 - r)).sum())
    if decoder == "logits":
        return float((np.logaddexp(0, r) - x * r).sum())
    return float((0.5 * (x - r) ** 2).sum())  # the unit-variance Gaussian's


def load():
    from vaeloss.usercode import sandbox
    from vaeloss.usercode.keras2 import keras2_names, supply_keras2
    from vaeloss.usercode.loader import load_module
    from vaeloss.usercode.sourcefile import read_source_file

    path = Path(SPEC["file"])
    if SPEC["arrays"] == "keras-torch":
        import ast

        supply_keras2(keras2_names(ast.parse(read_source_file(path).text)))
    sandbox.install([Path(tempfile.gettempdir())])
    module = load_module(path, path.stem, [str(path.parent)], exec_module=False).module
    owner, _, method = SPEC["name"].partition(".")
    fn = getattr(module, owner)
    instance = None
    if method:  # built when it reads the latents from self, else a method that needs no self
        instance = fn() if SPEC.get("attributes") else object()
        fn = getattr(fn, method).__get__(instance)
    return module, fn, instance


def loss_at(loaded, r, x, mu, logvar, B):
    module, fn, instance = loaded
    values = {"recon": r, "data": x, "mu": mu, "logvar": logvar}
    for name, role in SPEC["free"].items():
        setattr(module, name, to_array(values[role]))
    for name, role in SPEC.get("attributes", {}).items():
        setattr(instance, name, to_array(values[role]))
    kwargs = {p: to_array(values[role]) for p, role in SPEC["params"].items()}
    return to_float(fn(**kwargs), B)


def beta(loaded, B, shape, k, delta=0.05):
    rng = np.random.default_rng(0)
    D = int(np.prod(shape))
    x = rng.random((B, *shape))
    low, high = (-1.0, 1.0) if SPEC["decoder"] == "logits" else (0.2, 0.8)
    r = rng.uniform(low, high, (B, *shape))
    mu, logvar = rng.normal(size=(B, k)), rng.normal(scale=0.3, size=(B, k))
    base = loss_at(loaded, r, x, mu, logvar, B)
    # every reconstruction towards its data, every mean away from 0: large changes of both
    # terms, far above the rounding of a framework that reduces in float32
    r2 = r + delta * np.sign(x - r) if SPEC["decoder"] != "logits" else r + delta * np.sign(x - 0.5)
    mu2 = mu + delta * np.sign(mu)
    a = (loss_at(loaded, r2, x, mu, logvar, B) - base) / (
        nll(r2, x, SPEC["decoder"]) - nll(r, x, SPEC["decoder"])
    )
    b = (loss_at(loaded, r, x, mu2, logvar, B) - base) / float(0.5 * (mu2**2 - mu**2).sum())
    assert D == r[0].size
    return b / a


out = []
for SPEC in SPECS:
    loaded = load()
    out.append([beta(loaded, B, tuple(shape), k) for B, shape, k in SPEC["cases"]])
print(json.dumps(out))
