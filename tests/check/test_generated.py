"""`vaeloss check` on the generated corpus (``tests/check/generated``): loss files composed from
the idioms people write, each with its objective known by construction (the generator's own
algebra, which imports nothing of vaeloss), checked as a user would (no name given).

A fixed sample, in which every option of every choice point is taken at least once per
framework, plus a seeded draw; the whole space is ``bench/corpus.py``. The generator's truth
is itself confirmed for every PyTorch loss that can be called alone: its factors measured by
calling the file's own loss against ``torch.distributions``.
"""

from __future__ import annotations

import importlib.util
import math
import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GENERATED = Path(__file__).parent / "generated"
sys.path.insert(0, str(GENERATED))

import confirm  # noqa: E402
import lossgen  # noqa: E402
from harness import run_spec  # noqa: E402
from render import render  # noqa: E402

_DRAW = random.Random(7)
TORCH_SAMPLE = lossgen.covering("torch") + [
    lossgen.random_spec("torch", _DRAW, cheap_only=True) for _ in range(30)
]
FRAMEWORK_MODULES = {"keras3": "keras", "keras2": "keras", "tf": "tensorflow", "jax": "jax"}


@pytest.mark.parametrize("spec", TORCH_SAMPLE, ids=lambda s: s.label())
def test_generated_torch_file(spec, tmp_path):
    outcome = run_spec(spec, tmp_path)
    assert outcome.kind == "right", f"{outcome.kind}: {outcome.detail}\n{render(spec)}"


@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=lossgen.specs("torch", cheap_only=True), folder=st.integers(0, 10**9))
def test_generated_torch_property(spec, folder, tmp_path_factory):
    outcome = run_spec(spec, tmp_path_factory.mktemp(f"spec{folder}"))
    assert outcome.kind == "right", f"{outcome.kind}: {outcome.detail}\n{render(spec)}"


@pytest.mark.parametrize(
    "spec",
    [s for s in TORCH_SAMPLE + [lossgen.random_spec("torch", random.Random(f"confirm{i}")) for i in range(60)]
     if confirm.confirmable(s)],
    ids=lambda s: s.label(),
)  # fmt: skip
def test_generator_truth_confirmed_in_torch(spec, tmp_path):
    a, b = confirm.measured_factors(spec, tmp_path)
    B, D, k = spec.sizes
    # float64 cancellation in a loss of ~1e7 leaves ~1e-6 relative; the factors differ by 2x or more
    assert a == pytest.approx(spec.a().at(B, D, k), rel=1e-4)
    assert b == pytest.approx(spec.b().at(B, D, k), rel=1e-4)


def test_covering_sample_takes_every_option():
    for framework in lossgen.FRAMEWORKS:
        taken: dict[str, set[str]] = {}
        for spec in lossgen.covering(framework):
            for point, value in spec.idioms().items():
                taken.setdefault(point, set()).add(value)
        likelihoods = set(lossgen.likelihoods(framework))
        assert taken["likelihood"] == likelihoods
        styles = {(s.likelihood, s.recon_style) for s in lossgen.covering(framework)}
        assert styles == {(lik, n) for lik in likelihoods for n in lossgen.recon_styles(framework, lik)}
        assert taken["shape"] == set(lossgen.SHAPES[framework])
        assert taken["parameterisation"] == set(lossgen.PARAMS)


def test_algebra_by_hand():
    """The seed's loss: mean BCE (over B*D) + summed KL: beta B*D; the Keras blog's: D/k."""
    seed = lossgen.Spec("torch", "bernoulli", "F.call-default", ("mean", "mean"), "logvar", "closed",
                        ("sum", "sum"), lossgen.Fraction(1), "none", "none", "function", 0,
                        "recon,data,mu,scale", "scalar", (128, 784, 20))  # fmt: skip
    assert seed.beta().at(128, 784, 20) == 128 * 784
    blog = lossgen.Spec("keras3", "bernoulli", "keras.losses", ("mean", "none"), "logvar", "closed",
                        ("mean", "none"), lossgen.Fraction(1), "none", "none", "function", 3,
                        "recon,data,mu,scale", "scalar", (100, 784, 2))  # fmt: skip
    assert blog.beta().at(100, 784, 2) == pytest.approx(392)
    assert blog.output == "per_sample"


F = lossgen.Fraction
REGRESSIONS = {
    # float32 rounding fitted 1/(60005*B*D): the formula 12001*D/(12000*k) instead of D/k
    "keras3-divided-by-the-data-set-size": lossgen.Spec(
        "keras3", "bernoulli_logits", "log_sigmoid", ("mean", "mean"), "logvar", "closed-alt",
        ("mean", "mean"), F(1), "literal", "per-dataset", "packed", 0, "recon,data,mu,scale", "dict",
        (64, 784, 20)),
    "keras2-divided-by-the-data-set-size": lossgen.Spec(
        "keras2", "bernoulli_logits", "log_sigmoid", ("sum", "mean"), "var", "closed-alt", ("mean", "mean"),
        F(1), "none", "per-dataset", "function", 2, "recon,data,mu,scale", "dict", (64, 784, 20)),
    # a KL weighted 1e-3 and averaged beside a reconstruction summed and multiplied by D: its
    # fit's misfit was float64 rounding (2e-6), reported as "not a multiple of the Gaussian KL"
    "torch-tiny-kl-std": lossgen.Spec(
        "torch", "bernoulli", "F.call", ("sum", "sum"), "std", "closed", ("mean", "mean"),
        F(1, 1000), "literal", "times-dim", "function", 0, "recon,data,mu,scale", "scalar", (64, 784, 20)),
    # the same with a Monte-Carlo KL: its noise (1e-10 of the loss) was taken for none
    "torch-tiny-monte-carlo-kl": lossgen.Spec(
        "torch", "laplace", "F.call", ("sum", "sum"), "var", "monte-carlo", ("mean", "mean"),
        F(1, 1000), "literal", "times-dim", "loop-train", 0, "recon,data,mu,scale", "scalar", (64, 784, 20)),
}  # fmt: skip


@pytest.mark.parametrize("name", [n for n in REGRESSIONS if n.startswith("torch")])
def test_generated_regression_torch(name, tmp_path):
    outcome = run_spec(REGRESSIONS[name], tmp_path)
    assert outcome.kind == "right", f"{outcome.kind}: {outcome.detail}"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["keras3", "keras2", "tf", "jax"])
def test_generated_framework_files(framework, tmp_path):
    """Every idiom of the framework, checked in one process of its own (one import)."""
    if not _installed(FRAMEWORK_MODULES[framework]):
        pytest.skip(f"{FRAMEWORK_MODULES[framework]} is not installed")
    draw = random.Random(5)
    specs = lossgen.covering(framework) + [
        lossgen.random_spec(framework, draw, cheap_only=True) for _ in range(4)
    ]
    specs += [s for s in REGRESSIONS.values() if s.framework == framework]
    (tmp_path / "specs").write_bytes(pickle.dumps(specs))
    subprocess.run(
        [sys.executable, "-W", "ignore", str(GENERATED / "batch.py"), str(tmp_path / "specs"),
         str(tmp_path / "outcomes"), "120"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    outcomes = pickle.loads((tmp_path / "outcomes").read_bytes())
    wrong = [f"{o.spec.label()}: {o.kind}: {o.detail}" for o in outcomes if o.kind != "right"]
    assert not wrong, "\n".join(wrong)
    assert len(outcomes) == len(specs) and not math.isnan(sum(o.seconds for o in outcomes))
