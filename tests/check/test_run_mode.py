"""``vaeloss check`` in run mode, on whole scripts as people write them (``tests/check/run``):
the file runs up to its first backward(), and the loss it differentiates is checked at the
sizes the step ran at. Each expected beta is derived by hand in the test's comments and
confirmed without vaeloss: the file's own loss function called at the step's sizes and its
factors measured against ``torch.distributions``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import distributions as dist

from vaeloss.check import check_loss
from vaeloss.check.report import format_report

RUN = Path(__file__).parent / "run"


def _definitions(path: Path) -> dict[str, object]:
    """The file's imports, functions, classes and literal settings, without running the rest."""
    namespace: dict[str, object] = {"__name__": "definitions"}
    kept = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign)
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, kept):
            try:
                exec(compile(ast.Module([node], []), str(path), "exec"), namespace)
            except Exception:  # noqa: BLE001 - a statement needing data or a GPU
                pass
    return namespace


def _measured_beta(loss, B: int, D: int, k: int, likelihood: str, shape=None) -> float:
    """beta = b / a of ``loss = a * sum NLL + b * sum KL + const``, measured by moving the
    reconstruction alone and the posterior alone (float64)."""
    g = torch.Generator().manual_seed(0)
    shape = shape or (B, D)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    if likelihood == "bernoulli":
        x = x.round()  # binary data: the Bernoulli's support
    mu, logvar = (
        torch.randn(B, k, generator=g, dtype=torch.float64),
        0.3 * torch.randn(B, k, generator=g, dtype=torch.float64),
    )
    r0 = torch.rand(shape, generator=g, dtype=torch.float64) * 0.8 + 0.1
    r1 = torch.rand(shape, generator=g, dtype=torch.float64) * 0.8 + 0.1

    def value(r, m, v):
        out = loss(r, x, m, v)
        return float(out["loss"] if isinstance(out, dict) else out)

    def nll(r):
        d = dist.Bernoulli(probs=r) if likelihood == "bernoulli" else dist.Normal(r, 1.0)
        return float(-d.log_prob(x).sum())

    def kl(m, v):
        return float(dist.kl_divergence(dist.Normal(m, (0.5 * v).exp()), dist.Normal(0.0, 1.0)).sum())

    a = (value(r1, mu, logvar) - value(r0, mu, logvar)) / (nll(r1) - nll(r0))
    mu1 = mu + 0.5
    b = (value(r0, mu1, logvar) - value(r0, mu, logvar)) / (kl(mu1, logvar) - kl(mu, logvar))
    return b / a


def _check(name: str, **kwargs):
    return check_loss(str(RUN / name), **kwargs)


def test_a_top_level_training_loop_is_checked_at_its_own_sizes():
    # (BCE_sum + KLD_sum) / B * 0.5: a = b = 1/(2B) -> beta = 1, at B=64 (argparse), k=8 (the model)
    report = _check("examples_latent8.py")
    assert report.function == "vae_loss"
    assert report.sizes == {"B": 64, "D": 784, "k": 8}
    assert report.effective_beta == pytest.approx(1.0, rel=1e-9)
    assert report.probe.recon_fit.a == pytest.approx(1 / (2 * 64), rel=1e-9)
    loss = _definitions(RUN / "examples_latent8.py")["vae_loss"]
    assert _measured_beta(loss, 64, 784, 8, "bernoulli") == pytest.approx(report.effective_beta, rel=1e-9)
    text = format_report(report)
    assert "it returned the loss your step differentiates (`loss.backward()` at line 73)" in text
    assert "  B=64: the batch your DataLoader gave: [64, 1, 28, 28]" in text
    assert "  k=8: the latent's: 2 of the loss's arguments are [64, 8]" in text


def test_a_method_returning_a_dict_is_checked_at_the_cifar_sizes():
    # mse_loss mean over B*D: a = 2/(B*D) (sigma = 1 NLL is half the squared error);
    # kld_weight * mean over B of the summed KL: b = 0.00025/B -> beta = 0.00025 * D / 2 = 0.384 at D=3072
    report = _check("cifar_method_dict.py")
    assert report.function == "ConvVAE.loss_function"
    assert report.sizes == {"B": 32, "D": 3072, "k": 16}
    assert report.effective_beta == pytest.approx(0.00025 * 3072 / 2, rel=1e-9)
    assert report.beta.formula() == "D/8000"
    # its transform normalises to [-1, 1], where data's variance is at most 1: sigma^2 = 0.384 is
    # no "larger than any data's variance" (it would be for data in [0, 1], at most 0.25)
    assert report.observed.data_range == (-1.0, 1.0)
    assert "decoder-variance-scale" not in {f.code for f in report.findings}
    loss = _definitions(RUN / "cifar_method_dict.py")["ConvVAE"]().loss_function
    measured = _measured_beta(loss, 32, 3072, 16, "gaussian", shape=(32, 3, 32, 32))
    assert measured == pytest.approx(report.effective_beta, rel=1e-9)


def test_a_loss_nested_in_main_reads_its_argparse_beta():
    # (BCE_sum + 4 * KLD_sum) / B: beta = 4 whatever the sizes; B=256, k=10 from the step
    report = _check("nested_main_cuda.py")
    assert report.function == "main.loss_fn"
    assert report.sizes == {"B": 256, "D": 784, "k": 10}
    assert report.effective_beta == pytest.approx(4.0, rel=1e-9)


def test_an_inline_loss_is_checked_at_the_loader_s_batch_size():
    # BCE mean over B*D: a = 1/(B*D) per summed NLL... relative to the per-sample ELBO averaged
    # over the batch a = 1/D; the KL summed over batch and latent: b = B -> beta = B*D = 78,400
    # at B=100 (not 100,352 at the default B=128)
    report = _check("inline_loop_fashion.py")
    assert report.sizes == {"B": 100, "D": 784, "k": 2}
    assert report.effective_beta == pytest.approx(100 * 784, rel=1e-9)
    assert report.beta.formula() == "B*D"
    assert any(f.code == "beta-depends-on-batch-size" for f in report.findings)


def test_sizes_the_user_gives_win_over_the_run():
    report = _check("examples_latent8.py", batch_size=32, latent_dim=5)
    assert report.sizes == {"B": 32, "D": 784, "k": 5}
    assert "  B=32: given" in format_report(report) and "  k=5: given" in format_report(report)


def test_a_run_that_fails_falls_back_to_calling_and_says_so():
    report = _check("missing_csv.py")
    assert report.function == "loss_function" and report.sizes == {"B": 128, "D": 784, "k": 20}
    text = format_report(report)
    assert (
        'it did not reach a backward(): line 8 (`rows = np.loadtxt("my_measurements.csv", delimiter=",", '
        "dtype=np.float32)`) raised FileNotFoundError: my_measurements.csv not found." in text
    )
    assert "so the loss was called instead, at B=128, D=784, k=20" in text
    defaults = "sizes: B=128, D=784, k=20 are vaeloss's defaults, not read from your file: give yours with"
    assert f"{defaults} -B N -D N -k N" in text


def test_call_mode_keeps_vaeloss_s_sizes():
    report = _check("examples_latent8.py", mode="call")
    assert report.observed is None and report.sizes == {"B": 128, "D": 784, "k": 20}
    assert report.effective_beta == pytest.approx(1.0, rel=1e-9)


def test_the_cli_reports_the_run_in_json(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "vaeloss", "check", str(RUN / "nested_main_cuda.py"), "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["sizes"] == {"B": 256, "D": 784, "k": 10}
    assert data["observed"]["stopped_at"] == "`loss.backward()` at line 43"
    assert data["observed"]["function"] == "main.<locals>.loss_fn"
    assert "DataLoader(num_workers=2) by loading in one process" in data["observed"]["replaced"]
    assert list(tmp_path.iterdir()) == []  # nothing written where the user ran it


TENSORBOARD_SCRIPT = """
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

writer = SummaryWriter("runs/exp1")
model = nn.Linear(6, 4)
decoder = nn.Linear(2, 6)


def loss_function(x_hat, x, mu, logvar):
    mse = ((x_hat - x) ** 2).sum()
    return mse - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


for step in range(10):
    x = torch.rand(16, 6)
    mu, logvar = model(x).chunk(2, dim=1)
    loss = loss_function(decoder(mu), x, mu, logvar)
    writer.add_scalar("loss", loss.item(), step)
    loss.backward()
"""


def test_tensorboard_writes_nothing_when_loading_or_running(tmp_path, monkeypatch):
    """TensorBoard writes through TensorFlow's C++ file system, which an audit hook does not see
    (it wrote event files into the user's folder): it is made to use its Python one."""
    path = tmp_path / "train.py"
    path.write_text(TENSORBOARD_SCRIPT)
    monkeypatch.chdir(tmp_path)
    for mode in ("run", "call"):
        report = check_loss(str(path), mode=mode)
        assert report.function == "loss_function"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"], mode
    assert report.observed is None and report.sizes["B"] == 128
    ran = check_loss(str(path))
    assert ran.sizes == {"B": 16, "D": 6, "k": 2}
    assert ran.effective_beta == pytest.approx(0.5, rel=1e-9)  # squared error: 2 x the unit Gaussian NLL


REQUIRED_ARGS_SCRIPT = """
import argparse

import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--config", required=True)
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--latent", type=int, default=4)
parser.add_argument("--beta", type=float, default=1.0)
args = parser.parse_args()
if args.config is None:
    raise ValueError("you must provide config file")

encoder, decoder = nn.Linear(10, 2 * args.latent), nn.Linear(args.latent, 10)


def loss_fn(x_hat, x, mu, logvar):
    nll = ((x_hat - x) ** 2).sum(dim=1).mean()
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1).mean()
    return nll + args.beta * kl


data = torch.rand(1000, 10)
for x in data.split(args.batch):
    mu, logvar = encoder(x).chunk(2, dim=1)
    loss = loss_fn(decoder(mu), x, mu, logvar)
    loss.backward()
"""


def test_arguments_after_a_double_dash_go_to_the_script(tmp_path, capsys):
    """Without them the script stops itself (a required --config) and the loss is called at the
    defaults; with them it runs at the batch and latent they set, and its beta is theirs: the
    squared error summed per sample is 2 x the unit Gaussian NLL, so beta = args.beta / 2."""
    from vaeloss.cli import main

    path = tmp_path / "train.py"
    path.write_text(REQUIRED_ARGS_SCRIPT)
    assert main(["check", str(path), "--json"]) == 0
    fell_back = json.loads(capsys.readouterr().out)
    assert "raised ValueError: you must provide config file" in fell_back["observed"]["failure"]
    assert fell_back["effective_beta"] == pytest.approx(0.5, rel=1e-9)
    args = ["--config", "c.yaml", "--batch", "24", "--latent", "6", "--beta", "3"]
    assert main(["check", str(path), "--json", "--", *args]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert (
        ran["observed"]["ran"]
        == f"train.py as a script (its main guard too), with the arguments {' '.join(args)}"
    )
    assert ran["sizes"] == {"B": 24, "D": 10, "k": 6}
    assert ran["effective_beta"] == pytest.approx(1.5, rel=1e-9)
    assert main(["check", str(path), str(path), "--", "--config", "c"]) == 2
    assert "Expected arguments after -- only when checking one file" in capsys.readouterr().err


def test_a_project_s_loss_is_checked_as_the_run_built_it():
    """train_main.py wires a model, a GaussianVAELoss(beta=args.beta) of vae_losses.py and a
    Trainer of vae_trainer.py whose loop calls backward(). The loss is the object the run
    built, with beta 4 from argparse (built anew from its defaults it would have beta 1):
    (summed squared error + 4 * summed KL) / B, a = 2/B, b = 4/B: beta = 2."""
    report = _check("project/train_main.py")
    assert report.path == str(RUN / "project" / "vae_losses.py")
    assert report.function == "GaussianVAELoss.forward"
    assert report.described == "the GaussianVAELoss your run built (beta=4.0), its forward"
    assert report.sizes == {"B": 50, "D": 12, "k": 3}
    assert report.effective_beta == pytest.approx(2.0, rel=1e-9)
    assert report.observed.stopped_at == "`loss.backward()` at vae_trainer.py, line 15"
    namespace = _definitions(RUN / "project" / "vae_losses.py")
    measured = _measured_beta(namespace["GaussianVAELoss"](beta=4.0), 50, 12, 3, "gaussian")
    assert measured == pytest.approx(report.effective_beta, rel=1e-9)


KEYWORD_BETA_SCRIPT = """
import argparse

import torch
import torch.nn.functional as F
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--beta", type=float, default=4.0)
args = parser.parse_args()


def loss_function(recon_x, x, mu, logvar, beta=1.0):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + beta * kld) / x.size(0)


encoder, decoder = nn.Linear(20, 10), nn.Sequential(nn.Linear(5, 20), nn.Sigmoid())
for x in torch.rand(640, 20).split(64):
    mu, logvar = encoder(x).chunk(2, dim=1)
    loss = loss_function(decoder(mu), x, mu, logvar, beta=args.beta)
    loss.backward()
"""


def test_the_numbers_the_step_passes_are_the_loss_s(tmp_path):
    """The loop passes beta=args.beta (4.0) over the default 1.0: beta 4, as trained; --arg wins."""
    path = tmp_path / "train.py"
    path.write_text(KEYWORD_BETA_SCRIPT)
    report = check_loss(str(path))
    assert report.observed.arguments == {"beta": 4.0}
    assert report.effective_beta == pytest.approx(4.0, rel=1e-9)
    assert report.defaults["beta"] == 4.0
    assert check_loss(str(path), args={"beta": 2.0}).effective_beta == pytest.approx(2.0, rel=1e-9)
    assert check_loss(str(path), mode="call").effective_beta == pytest.approx(1.0, rel=1e-9)


LOGGED_SCRIPT = """
import torch
import wandb
from torch import nn

wandb.init(project="vae", config={"batch": 40})
encoder, decoder = nn.Linear(8, 6), nn.Linear(3, 8)


def loss_fn(x_hat, x, mu, logvar):
    return ((x_hat - x) ** 2).sum() - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


for x in torch.rand(400, 8).split(40):
    mu, logvar = encoder(x).chunk(2, dim=1)
    loss = loss_fn(decoder(mu), x, mu, logvar)
    wandb.log({"loss": loss.item()})
    loss.backward()
"""


def test_an_experiment_logger_that_is_not_installed_is_stood_in_for(tmp_path):
    """wandb is not installed here: a stand-in lets the run reach its step (a logger does not
    change the loss); summed squared error + summed KL: beta = 1/2 at the step's B=40, k=3."""
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    path = tmp_path / "train.py"
    path.write_text(LOGGED_SCRIPT)
    report = check_loss(str(path))
    assert "wandb (not installed here) by a stand-in that does nothing" in report.observed.replaced
    assert report.sizes == {"B": 40, "D": 8, "k": 3}
    assert report.effective_beta == pytest.approx(0.5, rel=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]
