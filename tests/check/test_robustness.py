"""`vaeloss check` time limits by phase, slow losses, formulas that need three sizes, and
findings that point only inside the loss."""

import json
import textwrap

import pytest

from vaeloss.check.runner import check_loss
from vaeloss.cli import main

BCE_KLD = """
import torch
import torch.nn.functional as F
"""


def _write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_timeout_in_the_import_phase_says_so(tmp_path, capsys):
    _write(tmp_path, "slow_dep.py", "import time\ntime.sleep(60)\n")
    path = _write(
        tmp_path,
        "user_loss.py",
        BCE_KLD
        + "import slow_dep\n\ndef loss(recon_x, x, mu, logvar):\n    return recon_x.sum() + mu.sum()\n",
    )
    assert main(["check", str(path), "--timeout", "4"]) == 2
    err = capsys.readouterr().err
    assert (
        "Expected user_loss.py to load within timeout=4 s but loading its top-level statements did not finish"
        in err
    )
    assert "(the import phase)" in err and "Try --timeout 8" in err


def test_timeout_in_the_call_phase_gives_the_time_per_call(tmp_path, capsys):
    path = _write(
        tmp_path,
        "user_loss.py",
        BCE_KLD
        + """
import time

def loss(recon_x, x, mu, logvar):
    time.sleep(0.6)
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
""",
    )
    assert main(["check", str(path), "--timeout", "3"]) == 2
    err = capsys.readouterr().err
    assert "within timeout=3 s but it did not (the call phase)" in err
    assert "calls of the loss were made, each took 0.6" in err


def test_a_slow_loss_gets_fewer_calls(tmp_path, capsys):
    """0.2 s a call: the full plan (about 66 calls) does not fit in 12 s, the reduced one does."""
    path = _write(
        tmp_path,
        "user_loss.py",
        BCE_KLD
        + """
import time

def loss(recon_x, x, mu, logvar):
    time.sleep(0.2)
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
""",
    )
    assert main(["check", str(path), "--timeout", "12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["effective_beta_formula"] == "1"
    assert data["seconds_per_call"] == pytest.approx(0.2, rel=0.25)


@pytest.mark.parametrize(
    ("call", "meaning", "replacement"),
    [
        pytest.param("size_average=False", "sums over the batch and every data element", "'sum'", id="False"),
        pytest.param(
            "size_average=True", "averages over the batch *and* every data element", "'mean'", id="True"
        ),
    ],
)
def test_deprecated_reduction_says_what_it_does(tmp_path, call, meaning, replacement):
    path = _write(
        tmp_path,
        "user_loss.py",
        BCE_KLD
        + f"""
def loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, {call})
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
""",
    )
    report = check_loss(str(path), isolate=False)
    messages = [f.message for f in report.findings if f.code == "deprecated-reduction-argument"]
    assert len(messages) == 1
    assert messages[0].startswith(f"size_average/reduce are deprecated; {call} {meaning}")
    assert messages[0].endswith(f"Use reduction={replacement} instead.")


def test_findings_point_only_inside_the_loss(tmp_path):
    """A training loop's .item(), a DataLoader's .data and the model's 784 are not the loss's."""
    path = _write(
        tmp_path,
        "train.py",
        BCE_KLD
        + """
from torch import nn

model = nn.Linear(784, 20)
weights = model.weight.data


def loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def train(loader):
    for x in loader:
        print(loss(x, x, x, x).item())
""",
    )
    report = check_loss(str(path), isolate=False)
    codes = {f.code for f in report.findings}
    assert "gradient-cut-in-source" not in codes and "hard-coded-data-dim" not in codes
    assert all(f.line is None or 10 <= f.line <= 12 for f in report.findings)


def test_a_batch_size_constant_gives_no_invented_formula(tmp_path):
    """KL / (BATCH_SIZE * input_dim) with the script's constants 128 and 784, and BCE averaged
    over the batch: at D = 784 the beta is B*D / (128*784) = B/128, and no D^-2 appears."""
    path = _write(
        tmp_path,
        "user_loss.py",
        BCE_KLD
        + """
BATCH_SIZE = 128

def loss(recon_x, x, mu, logvar, input_dim=784):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, input_dim))
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld / (BATCH_SIZE * input_dim)
""",
    )
    for B in (128, 64):
        report = check_loss(str(path), batch_size=B, isolate=False)
        assert report.effective_beta == pytest.approx(B / 128, rel=1e-9)
        assert report.to_json()["formula_fixed_dims"] == ["D"]
        assert "D^2" not in (report.beta.formula() if report.beta else "")


def test_a_factor_that_is_no_power_of_the_sizes_gives_the_value_only(tmp_path):
    """KL / (B + 1): b = 1/(B + 1) is no monomial in B; the beta holds at these sizes only."""
    path = _write(
        tmp_path,
        "user_loss.py",
        BCE_KLD
        + """
def loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld / (x.shape[0] + 1)
""",
    )
    report = check_loss(str(path), batch_size=16, isolate=False)
    data = report.to_json()
    assert data["effective_beta"] == pytest.approx(1 / 17, rel=1e-9)
    assert data["effective_beta_formula"] is None
    assert "formula-at-these-sizes" in {f["code"] for f in data["findings"]}
