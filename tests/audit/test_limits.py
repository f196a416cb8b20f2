"""`vaeloss audit` on inputs outside what it can measure: exit 2 before any training, with a
message that names the value and suggests a sensible fix; never a traceback."""

import re
import warnings

import numpy as np
import pytest

import vaeloss.audit.execute as execute
from vaeloss.cli import main


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(execute, "train", refuse)


def _arrays(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "rows100.npy", rng.random((100, 6)).astype(np.float32))
    np.save(tmp_path / "rows2.npy", rng.random((2, 6)).astype(np.float32))
    np.save(tmp_path / "flat.npy", rng.random(400).astype(np.float32))
    np.save(tmp_path / "complex.npy", (rng.random((300, 4)) + 1j).astype(np.complex64))
    np.save(tmp_path / "text.npy", np.array([["a", "b"]] * 300))


LIMITS = [
    pytest.param(
        ["--batch-size", "5000"],
        r"--batch-size at most the 1438 training rows of data='digits' but got batch_size=5000 .* "
        r"Try --batch-size 64\.",
        id="batch-larger-than-data",  # digits: 1797 rows, round(0.2 * 1797) = 359 held out
    ),
    pytest.param(
        ["--data", "npy:{tmp}/rows100.npy"],
        r"at least 50 held-out rows .* has 100 rows, so 20 held out .* Try a data set with at least 250 rows",
        id="too-few-validation-rows",
    ),
    pytest.param(
        ["--data", "npy:{tmp}/rows2.npy", "-k", "5000"],
        r"at least 50 held-out rows .* has 2 rows, so 1 held out",
        id="two-rows",
    ),
    pytest.param(
        ["--latent-dim", "65"],
        r"--latent-dim at most the data dimension D=64 .* but got latent_dim=65\. Try --latent-dim 8\.",
        id="latent-dim-above-data-dim",
    ),
    pytest.param(
        ["--seed", "-5"],
        r"integer seed in 0 \.\. 4294967295 but got seed='-5'\. Try --seed 0",
        id="seed-negative",
    ),
    pytest.param(["--seed", "1e20"], r"seed='1e20'\. Try --seed 0", id="seed-float"),
    pytest.param(["--seed", "4294967296"], r"seed='4294967296'", id="seed-too-large"),
    pytest.param(
        ["--data", "npy:{tmp}/flat.npy"],
        r"shape \[N, D\] or \[N, C, H, W\] .* but got shape \(400,\) .* Try x\.reshape\(-1, 1\)",
        id="one-dimensional-data",
    ),
    pytest.param(
        ["--data", "npy:{tmp}/complex.npy"],
        r"real-valued data but got dtype complex64 .* Try np\.abs\(x\)",
        id="complex-data",
    ),
    pytest.param(["--data", "npy:{tmp}/text.npy"], r"numeric data but got dtype <U1", id="text-data"),
    # the advice is the option's default (it said epochs=200, lr=1.0: neither is a default)
    pytest.param(["--epochs", "0"], r"integer >= 1 but got epochs=0\. Try epochs=1000\.", id="zero-epochs"),
    pytest.param(["--lr", "-1"], r"number > 0 but got lr=-1\.0\. Try lr=0\.003\.", id="negative-lr"),
    pytest.param(["--time-budget", "0"], r"time_budget=0\.0\. Try time_budget=180\.", id="zero-budget"),
    pytest.param(["--iwae-samples", "-3"], r"iwae_samples=-3\. Try iwae_samples=1000\.", id="negative-iwae"),
    # audit's own advice, not check's ("Try 'vaeloss check path/to/loss.py'")
    pytest.param(
        ["--loss", "{tmp}/no_such_loss.py"],
        r"path='.*no_such_loss\.py', which does not exist\. Try the path of an existing \.py file or "
        r"\.ipynb notebook, from /",
        id="missing-loss-file",
    ),
]


@pytest.mark.parametrize(("args", "pattern"), LIMITS)
def test_limit_is_exit_2_before_training(tmp_path, capsys, no_training, args, pattern):
    _arrays(tmp_path)
    out = tmp_path / "report"
    args = [a.format(tmp=tmp_path) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy ComplexWarning leaked through before
        code = main(["audit", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), err
    assert not out.exists()


def test_mnist_error_names_all_four_files(tmp_path, capsys, no_training):
    assert main(["audit", "--data", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in err
