"""The JAX backend's calls: compiled by ``jax.jit`` once per shape of their arrays, every value
the probe varies an argument of the compilation (never frozen into it), and run as written when
they do not trace or draw NumPy's random numbers.

JAX runs in a fresh process (jaxlib in a pytest process that runs torch's tests crashes it); the
script prints what each call returned, the same call run op by op, and how often the function's
Python body ran (once per compilation, once per call op by op).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_SCRIPT = """
import json
import jax
import jax.numpy as jnp
import numpy as np
from vaeloss.check.probe.backend import Invocation
from vaeloss.check.probe.backend_jax import JaxBackend

backend, runs, out = JaxBackend(), {}, {}
g = np.random.default_rng(0)
small, other, wide = (jax.device_put(g.random((4, 3))) for _ in range(3))
wide = jax.device_put(g.random((5, 3)))


def run(fn, args, kwargs, bindings, owner, namespace):
    return backend.call(Invocation(fn, args, kwargs, bindings, owner, namespace))


def counted(name, fn):
    def run(args, kwargs, bindings):
        runs[name] = runs.get(name, 0) + 1
        return fn(args, kwargs, bindings)
    return run


def weighted(args, kwargs, bindings):
    return {"loss": kwargs["beta"] * jnp.sum(args[0]), "kl": jnp.sum(bindings["z_mean"] ** 2)}


def noisy(args, kwargs, bindings):
    return jnp.sum(args[0] * np.random.standard_normal(args[0].shape))


def checked(args, kwargs, bindings):
    if bool(jnp.any(args[0] > 1)):
        raise ValueError("x must be in [0, 1]")
    return jnp.sum(args[0])


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
    np.random.seed(seed)
    out["noisy"].append(floats(run(fn, [small], {}, {}, 2, globals())))
out["noisy_eager"] = []
for seed in (0, 1):
    np.random.seed(seed)
    out["noisy_eager"].append(floats(noisy([small], {}, {})))
fn = counted("checked", checked)
out["checked"] = [floats(run(fn, [x], {}, {}, 3, globals())) for x in (small, other)]
out["checked_eager"] = [float(np.sum(np.asarray(x))) for x in (small, other)]
try:
    run(fn, [small + 1], {}, {}, 3, globals())
except ValueError as exc:
    out["checked_error"] = str(exc)
COUNT = 0


def counting(args, kwargs, bindings):
    global COUNT
    COUNT = COUNT + 1  # rebinds a name of its module: a compilation would run it once
    return jnp.sum(args[0]) + COUNT


fn = counted("counting", counting)
out["counting"] = [floats(run(fn, [small], {}, {}, 4, globals())) for _ in range(3)]
out["count"] = COUNT
fn = counted("stateful", weighted)  # a method's call, with an object's state: never compiled
for _ in range(2):
    run(fn, [small], {"beta": 1.0}, {"z_mean": small}, 5, None)
out["runs"] = runs
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def calls() -> dict:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_compiled_once_per_shape_and_static_value(calls):
    # shapes (4,3) twice, (5,3), then (4,3) with beta 3: three compilations for four calls
    assert calls["runs"]["weighted"] == 3
    assert calls["weighted"] == pytest.approx(calls["weighted_eager"], rel=1e-12)


@pytest.mark.slow
def test_bound_values_are_arguments_not_frozen_constants(calls):
    actual = [c["kl"] for c in calls["weighted"]]
    expected = [c["kl"] for c in calls["weighted_eager"]]
    assert actual == pytest.approx(expected, rel=1e-12)
    assert actual[0] != pytest.approx(actual[1])  # the second call, same shapes, other z_mean


@pytest.mark.slow
def test_numpy_random_numbers_are_drawn_at_each_call(calls):
    # seeds 0, 1, 0: each call's own draws (the trace's draws undone), as op by op
    assert calls["noisy"] == pytest.approx([*calls["noisy_eager"], calls["noisy_eager"][0]], rel=1e-12)
    assert calls["noisy"][0] != pytest.approx(calls["noisy"][1])
    assert calls["runs"]["noisy"] == 4  # the trace that found the draws, then 3 calls as written


@pytest.mark.slow
def test_untraceable_code_runs_as_written(calls):
    assert calls["checked"] == pytest.approx(calls["checked_eager"], rel=1e-12)
    assert calls["checked_error"] == "x must be in [0, 1]"
    # the failed trace, then every call as written (the user's own error raised from one of them)
    assert calls["runs"]["checked"] == 4


@pytest.mark.slow
def test_a_call_that_rebinds_its_modules_names_runs_as_written(calls):
    # the failed trace's rebinding undone (COUNT no tracer), then each call as written: 1, 2, 3
    small_sum = calls["checked_eager"][0]
    assert calls["counting"] == pytest.approx([small_sum + 1, small_sum + 2, small_sum + 3], rel=1e-12)
    assert calls["count"] == 3
    assert calls["runs"]["counting"] == 4


@pytest.mark.slow
def test_a_call_with_an_objects_state_is_never_compiled(calls):
    assert calls["runs"]["stateful"] == 2
