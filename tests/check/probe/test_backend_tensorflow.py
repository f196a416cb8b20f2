"""The TensorFlow backend's calls: run as ``tf.function`` graphs traced once per shape, every
value the probe varies an argument of the graph, and run as written (seeded by
``tf.random.set_seed``) when they draw random numbers or do not trace.

TensorFlow runs in a fresh process (as JAX does, ``test_backend_jax.py``); the script prints
what each call returned, the same call run op by op, and how often the function's Python body
ran (once per trace, once per call as written).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_SCRIPT = """
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
from vaeloss.check.probe.backend import Invocation
from vaeloss.check.probe.backend_tensorflow import TensorFlowBackend

backend, runs, out = TensorFlowBackend(), {}, {}
g = np.random.default_rng(0)
small, other = (tf.constant(g.random((4, 3))) for _ in range(2))
wide = tf.constant(g.random((5, 3)))


def run(fn, args, kwargs, bindings, owner, namespace):
    return backend.call(Invocation(fn, args, kwargs, bindings, owner, namespace))


def counted(name, fn):
    def run(args, kwargs, bindings):
        runs[name] = runs.get(name, 0) + 1
        return fn(args, kwargs, bindings)
    return run


def weighted(args, kwargs, bindings):
    return {"loss": kwargs["beta"] * tf.reduce_sum(args[0]), "kl": tf.reduce_sum(bindings["z_mean"] ** 2)}


def noisy(args, kwargs, bindings):
    return tf.reduce_sum(args[0] * tf.random.normal(tf.shape(args[0]), dtype=tf.float64))


def checked(args, kwargs, bindings):
    if bool(tf.reduce_any(args[0] > 1)):
        raise ValueError("x must be in [0, 1]")
    return tf.reduce_sum(args[0])


def floats(v):
    return {k: float(a) for k, a in v.items()} if isinstance(v, dict) else float(v)


fn = counted("weighted", weighted)
calls = [(small, 2.0, other), (other, 2.0, small), (wide, 2.0, wide), (small, 3.0, other)]
out["weighted"] = [
    floats(run(fn, [x], {"beta": b}, {"z_mean": z}, 1, globals())) for x, b, z in calls
]
out["weighted_eager"] = [floats(weighted([x], {"beta": b}, {"z_mean": z})) for x, b, z in calls]
fn = counted("noisy", noisy)
out["noisy"] = []
for seed in (0, 1, 0):
    backend.seed(seed)
    out["noisy"].append(floats(run(fn, [small], {}, {}, 2, globals())))
out["noisy_eager"] = []
for seed in (0, 1):
    tf.random.set_seed(seed)
    out["noisy_eager"].append(floats(noisy([small], {}, {})))
fn = counted("checked", checked)
out["checked"] = [floats(run(fn, [x], {}, {}, 3, globals())) for x in (small, other)]
out["checked_eager"] = [float(np.sum(x.numpy())) for x in (small, other)]
try:
    run(fn, [small + 1], {}, {}, 3, globals())
except ValueError as exc:
    out["checked_error"] = str(exc)


def mapped(args, kwargs, bindings):  # a random op inside a function body of the graph
    noisy_row = lambda row: row * tf.random.normal(tf.shape(row), dtype=tf.float64)
    return tf.reduce_sum(tf.map_fn(noisy_row, args[0]))


fn = counted("mapped", mapped)
out["mapped"] = []
for seed in (0, 1):
    backend.seed(seed)
    out["mapped"].append(floats(run(fn, [small], {}, {}, 4, globals())))
out["runs"] = runs
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def calls() -> dict:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_traced_once_per_shape_and_constant(calls):
    # shapes (4,3) twice, (5,3), then (4,3) with beta 3: three traces for four calls
    assert calls["runs"]["weighted"] == 3
    assert calls["weighted"] == pytest.approx(calls["weighted_eager"], rel=1e-12)


@pytest.mark.slow
def test_bound_values_are_arguments_not_frozen_constants(calls):
    actual = [c["kl"] for c in calls["weighted"]]
    assert actual == pytest.approx([c["kl"] for c in calls["weighted_eager"]], rel=1e-12)
    assert actual[0] != pytest.approx(actual[1])  # the second call, same shapes, other z_mean


@pytest.mark.slow
def test_random_ops_run_as_written_from_the_seed(calls):
    # seeds 0, 1, 0: TensorFlow's own draws at each seed, as op by op
    assert calls["noisy"] == pytest.approx([*calls["noisy_eager"], calls["noisy_eager"][0]], rel=1e-12)
    assert calls["noisy"][0] != pytest.approx(calls["noisy"][1])
    assert calls["runs"]["noisy"] == 4  # the trace that found the random op, then 3 calls as written


@pytest.mark.slow
def test_untraceable_code_runs_as_written(calls):
    assert calls["checked"] == pytest.approx(calls["checked_eager"], rel=1e-12)
    assert calls["checked_error"] == "x must be in [0, 1]"
    assert calls["runs"]["checked"] == 4  # the failed trace, then every call as written


@pytest.mark.slow
def test_random_ops_inside_a_graphs_functions_run_as_written(calls):
    assert calls["mapped"][0] != pytest.approx(calls["mapped"][1])  # drawn anew from each seed
    assert calls["runs"]["mapped"] == 3  # the trace that found tf.map_fn's random op, then 2 calls
