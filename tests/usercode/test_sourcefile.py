"""A notebook as Python text: cells that do not parse are left out and listed, the rest kept
in place."""

import json
from pathlib import Path

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vaeloss.cli import main
from vaeloss.usercode.sourcefile import read_source_file

NOTEBOOK = Path(__file__).parents[1] / "check" / "real" / "course_notebook_broken_cells.ipynb"


def test_a_cell_that_does_not_parse_is_left_out_and_listed():
    source = read_source_file(NOTEBOOK)
    assert source.broken == ((4, "class VAE(torch.nn.Module):", "invalid syntax at its line 4"),)
    lines = source.text.splitlines()
    assert lines[3:7] == ["", "", "", ""]  # the broken cell's lines, blank and in place
    assert lines[8].startswith("def loss_function") and source.where(9) == "cell 3, line 1"


def test_the_rest_of_the_notebook_is_checked(capsys):
    # by hand: BCE summed over pixels and batch + KLD summed over latents and batch: the ELBO,
    # confirmed by the notebook's own cell run against torch.distributions
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace: dict = {}
    exec("".join(cells[0]["source"]) + "\n" + "".join(cells[2]["source"]), namespace)
    g = torch.Generator().manual_seed(0)
    recon, x = 0.05 + 0.9 * torch.rand(8, 784, generator=g), torch.rand(8, 784, generator=g)
    mu, logvar = torch.randn(8, 5, generator=g), 0.3 * torch.randn(8, 5, generator=g)
    nll = -Bernoulli(probs=recon, validate_args=False).log_prob(x).sum()
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum()
    assert float(namespace["loss_function"](recon, x, mu, logvar)) == pytest.approx(float(nll + kl), rel=1e-5)
    assert main(["check", str(NOTEBOOK), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["effective_beta"] == 1.0
    assert report["statements_not_run"] == [
        {
            "line": 4,
            "code": "class VAE(torch.nn.Module):",
            "reason": "the cell does not parse (invalid syntax at its line 4): left out, the other cells "
            "are loaded",
            "error": None,
        }
    ]
