"""A run of the user's file up to its first differentiation, in this process: what it stopped
at, the function that returned the loss, the sizes and their origins; and the runs that do not
get there, each saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaeloss.check.observe.apply import observe
from vaeloss.check.observe.torch_step import run_torch_step
from vaeloss.check.protocol import CheckRequest
from vaeloss.usercode import sandbox

RUN = Path(__file__).parents[1] / "run"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The sandbox as the worker has it: writes only to a private temporary folder."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.chdir(tmp_path)
    sandbox.install([folder])
    return folder


def _observe(path: Path, timeout: float = 60.0):
    return run_torch_step(path, "", path.read_text(), timeout)[0]


def _sizes(observation) -> dict[str, int]:
    return {s.name: s.value for s in observation.sizes}


@pytest.mark.parametrize(
    ("name", "function", "sizes", "statement", "line"),
    [
        pytest.param(
            "examples_latent8.py",
            "vae_loss",
            {"B": 64, "D": 784, "k": 8},
            "loss.backward()",
            73,
            id="top-level loop",
        ),
        pytest.param(
            "cifar_method_dict.py",
            "ConvVAE.loss_function",
            {"B": 32, "D": 3072, "k": 16},
            'train_loss["loss"].backward()',
            56,
            id="method, dict",
        ),
        pytest.param(
            "nested_main_cuda.py",
            "main.<locals>.loss_fn",
            {"B": 256, "D": 784, "k": 10},
            "loss.backward()",
            43,
            id="nested",
        ),
        pytest.param(
            "inline_loop_fashion.py", None, {"B": 100, "D": 784, "k": 2}, "loss.backward()", 33, id="inline"
        ),
    ],
)
def test_a_run_stops_at_the_first_backward_and_reads_the_step(
    scratch, name, function, sizes, statement, line
):
    o = _observe(RUN / name)
    assert o.failure is None
    assert o.stopped_at == f"`{statement}` at line {line}"
    assert o.function == function
    assert _sizes(o) == sizes
    assert list(scratch.parent.glob("results*")) == [] and not (scratch.parent / "data").exists()


def test_the_sizes_say_where_they_come_from(scratch):
    o = _observe(RUN / "examples_latent8.py")
    assert o.origin("B") == "the batch your DataLoader gave: [64, 1, 28, 28]"
    assert o.origin("D") == "the size of each sample of that batch: 1x28x28"
    assert o.origin("k") == "the latent's: 2 of the loss's arguments are [64, 8]"
    assert o.replaced == (
        "torchvision.datasets.MNIST (its files are not under ../data) by 60,000 synthetic L images of "
        "28x28, as its train split gives them, through your transform",
        "DataLoader(num_workers=1) by loading in one process",
        "the device 'cuda' (absent here) by the CPU",
    )
    inline = _observe(RUN / "inline_loop_fashion.py")
    assert inline.origin("k") == "the latent's: 3 of the step's z_mu, z_logvar, z are [100, 2]"


def test_without_a_data_loader_the_model_input_gives_the_batch(scratch, tmp_path):
    path = tmp_path / "tensors.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\n"
        "x_train = torch.rand(1000, 12)\n"
        "enc, dec = nn.Linear(12, 6), nn.Linear(3, 12)\n"
        "enc(torch.zeros(1, 12))  # a shape check with one sample\n"
        "for i in range(0, 1000, 50):\n"
        "    x = x_train[i:i + 50]\n"
        "    mu, logvar = enc(x).chunk(2, dim=1)\n"
        "    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()\n"
        "    loss = ((dec(z) - x) ** 2).sum() - 0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum()\n"
        "    loss.backward()\n"
    )
    o = _observe(path)
    assert _sizes(o) == {"B": 50, "D": 12, "k": 3}
    assert o.origin("B") == "the batch Linear was given at line 9: [50, 12]"


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        pytest.param(
            "import numpy as np\nrows = np.loadtxt('mine.csv')\n",
            "line 2 (`rows = np.loadtxt('mine.csv')`) raised FileNotFoundError: mine.csv not found.",
            id="a missing file",
        ),
        pytest.param(
            "import torch\nx = torch.ones(2)\n",
            "it ran to its end without differentiating a loss (no backward() or autograd.grad)",
            id="no backward",
        ),
        pytest.param(
            "import sys\nsys.exit(3)\n", "it called sys.exit(3) before differentiating a loss", id="sys.exit"
        ),
        pytest.param(
            "import time\nwhile True:\n    time.sleep(0.01)\n",
            "it ran for more than 0.5 s without differentiating a loss",
            id="too long",
        ),
    ],
)
def test_a_run_that_does_not_reach_a_backward_says_why(scratch, tmp_path, code, failure):
    path = tmp_path / "script.py"
    path.write_text(code)
    o = _observe(path, timeout=0.5)
    assert o.stopped_at is None and o.failure == failure and o.sizes == ()


def test_a_notebook_runs_its_cells_in_order(scratch, tmp_path):
    import json

    cells = [
        "import torch\nfrom torch import nn\nimport torch.nn.functional as F",
        "%matplotlib inline\nmodel = nn.Linear(6, 4)\ndecoder = nn.Linear(2, 6)",
        "def elbo(x_hat, x, mu, logvar):\n"
        "    kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())\n"
        "    return F.mse_loss(x_hat, x, reduction='sum') + kl",
        "x = torch.rand(16, 6)\nmu, logvar = model(x).chunk(2, dim=1)\nx_hat = decoder(mu)\n"
        "loss = elbo(x_hat, x, mu, logvar)\nloss.backward()",
    ]
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
            for c in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "vae.ipynb"
    path.write_text(json.dumps(notebook))
    request = CheckRequest(
        path=str(path), module="vae", search_path=(str(tmp_path),), names=(), explicit=False, args={},
        init={}, sizes={"B": 128, "D": 784, "k": 20}, input_shape=None, timeout=60.0, exec_module=False,
        mode="run",
    )  # fmt: skip
    o, live = observe(request)
    assert o.failure is None and o.function == "elbo"
    assert _sizes(o) == {"B": 16, "D": 6, "k": 2}
    assert live is not None and live.function.__name__ == "elbo" and live.instance is None
