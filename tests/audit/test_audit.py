"""`vaeloss audit`: verdicts, recommendations, reports, and bad inputs (exit 2, no report)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vaeloss.cli import main
from vaeloss.objective.presets import get_convention

EXAMPLES = Path(__file__).parents[2] / "vaeloss" / "examples"
FAST = ["--iwae-samples", "100", "--epochs", "40"]


def _audit(tmp_path, capsys, *args):
    out = tmp_path / "report"
    code = main(["audit", "--out", str(out), "--json", *FAST, *args])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code in (0, 1) else None), captured.err, out


@pytest.mark.slow
def test_collapsing_configuration(tmp_path, capsys):
    """size_average at KL weight 1: effective beta B*D = 4096 on digits: total collapse."""
    code, res, _, out = _audit(tmp_path, capsys, "--convention", "size_average", "--sweep", "none")
    assert code == 0
    assert res["verdict"] == "posterior collapse" and res["collapsed"]
    assert res["active_units"] == 0 and res["output_diversity"] < 0.1
    assert res["effective_beta"] == 64 * 64
    assert res["headline"].startswith("posterior collapse: 0 of 8 latent dims active")
    # the recommendation in the user's units is the ELBO beta divided by B*D (hand-derived)
    rec = res["recommended_beta"]
    assert rec["own_units"] == pytest.approx(rec["elbo"] / (64 * 64), rel=1e-12)
    report = (out / "report.md").read_text()
    assert report.startswith("# vaeloss audit: posterior collapse")
    assert (
        main(
            [
                "audit",
                "--out",
                str(tmp_path / "r2"),
                *FAST,
                "--convention",
                "size_average",
                "--sweep",
                "none",
                "--fail-on-collapse",
            ]
        )
        == 1
    )


@pytest.mark.slow
def test_healthy_configuration_and_sweep(tmp_path, capsys):
    code, res, _, out = _audit(tmp_path, capsys, "--sweep", "0.1,1,10")
    assert code == 0
    assert res["verdict"] == "healthy" and not res["collapsed"]
    assert res["active_units"] >= 3
    for key in (
        "verdict",
        "collapsed",
        "latent_dim",
        "active_units",
        "kl_per_dim",
        "kl",
        "recon",
        "mutual_information",
        "iwae_nll",
        "marginal_kl",
        "output_diversity",
        "effective_beta",
        "recommended_beta",
        "sweep",
        "report_dir",
    ):
        assert key in res
    assert set(res["recommended_beta"]) >= {"own_units", "elbo", "rule", "reason"}
    betas = [r["beta_elbo"] for r in res["sweep"]]
    assert betas == [0.1, 1.0, 10.0]
    assert [r["beta_own"] for r in res["sweep"]] == betas  # the ELBO convention: same units
    best = min(res["sweep"], key=lambda r: r["iwae_nll"])
    assert res["recommended_beta"]["elbo"] == best["beta_elbo"]
    # collapse points: beta_0 * exp(2 KL_j) of the reference model, recomputed here
    ref = next(r for r in res["sweep"] if r["beta_elbo"] == res["collapse_points"]["reference_beta"])
    import math

    expected = sorted(
        (ref["beta_elbo"] * math.exp(2 * kl) for kl in ref["kl_per_dim"] if kl > 0.01), reverse=True
    )
    assert res["collapse_points"]["betas"] == pytest.approx(expected)
    kls = [r["kl"] for r in res["sweep"]]
    assert kls[0] > kls[1] > kls[2]  # KL falls as beta rises
    assert res["sweep"][2]["active_units"] <= res["sweep"][0]["active_units"]
    # the reported KL is the mean of the per-dim KLs' sum
    assert res["kl"] == pytest.approx(sum(res["kl_per_dim"]))
    files = {p.name for p in out.iterdir()}
    assert {
        "report.md",
        "report.html",
        "metrics.json",
        "history.csv",
        "sweep.csv",
        "curves.png",
        "kl_per_dim.png",
        "reconstructions.png",
        "samples.png",
        "latent.png",
        "rate_distortion.png",
    } <= files
    assert "data:image/png;base64," in (out / "report.html").read_text()


@pytest.mark.slow
def test_unregularised_at_beta_1e_4(tmp_path, capsys):
    code, res, _, _ = _audit(tmp_path, capsys, "--beta", "1e-4", "--sweep", "none", "--epochs", "30")
    assert res["verdict"] == "unregularised latent space"
    assert res["aggregate_kl"] > 8
    assert res["marginal_kl"] > 0


@pytest.mark.slow
def test_recommendation_recovers_true_noise_on_linear_gaussian(tmp_path, capsys):
    code, res, _, _ = _audit(
        tmp_path,
        capsys,
        "--data",
        "linear-gaussian",
        "--convention",
        "sse_sum",
        "--model",
        "linear",
        "--sweep",
        "none",
        "-k",
        "6",  # at least its 4 signal dims, so that the residual is the noise
        "--epochs",
        "1000",  # the default budget: the calibration must converge
    )
    assert code == 0
    assert "provisional" not in res["recommended_beta"]["reason"]
    noise = 0.05  # linear_gaussian's default noise variance
    expected_own = get_convention("sse_sum").kl_weight_for(noise, B=64, D=8, k=6)
    assert expected_own == pytest.approx(0.1)
    assert res["recommended_beta"]["rule"] == "sigma-calibration"
    assert res["recommended_beta"]["own_units"] == pytest.approx(expected_own, rel=0.10)
    assert res["recommended_beta"]["elbo"] == pytest.approx(noise, rel=0.10)


@pytest.mark.slow
@pytest.mark.parametrize(
    "example", ["sum_bce_sum_kld.py", "keras_docs.py", "keras_blog.py", "kl_weight_c.py"]
)
def test_loss_from_shared_examples(tmp_path, capsys, example):
    """--loss reads the convention through check; --beta multiplies the user's own KL term."""
    code, res, _, _ = _audit(
        tmp_path,
        capsys,
        "--loss",
        str(EXAMPLES / example),
        "--beta",
        "1e-4",
        "--sweep",
        "none",
        "--epochs",
        "3",
    )
    assert code == 0
    D, k = 64, 8  # digits: D = 64; the default latent dim 8
    expected = {"sum_bce_sum_kld.py": 1, "keras_docs.py": 1, "keras_blog.py": D / k, "kl_weight_c.py": 0.5}[
        example
    ]
    assert res["effective_beta"] == pytest.approx(1e-4 * expected)
    assert res["beta_own"] == 1e-4


CHECK_CORPUS = Path(__file__).parents[1] / "check"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        # seed 5 in Keras 3: 784 * mean BCE + c * summed KL, c = 0.5: beta c * D / 784 (D = 64)
        ("frameworks/keras_kl_weight.py", 0.5 * 64 / 784),
        # a flax train_step's loss_fn closure: summed BCE + kl_weight (0.5) * summed KL: 1/2
        ("inline/flax_train_step.py", 0.5),
    ],
    ids=["keras", "flax-inline"],
)
def test_loss_written_in_another_framework(tmp_path, capsys, loss, expected):
    """--loss takes Keras and JAX files as check reads them: their convention is trained on the
    built-in (PyTorch) models; the report names the loss as check does."""
    code, res, _, out = _audit(
        tmp_path,
        capsys,
        "--loss",
        str(CHECK_CORPUS / loss),
        "--beta",
        "1e-4",
        "--sweep",
        "none",
        "--epochs",
        "3",
    )
    assert code == 0
    assert res["effective_beta"] == pytest.approx(1e-4 * expected, rel=1e-6)
    first = (out / "report.md").read_text().split("\n\n")[2]
    assert ("vae_loss in" if "keras" in loss else "the loss computed inline at lines 58-61") in first


def test_loss_with_hard_coded_784_gets_the_digits_at_28x28(tmp_path, capsys):
    """The seed's loss (x.view(-1, 784)) on the built-in data: the digits come at 28x28, said in
    the report (it was exit 2 advising --data-dim 784, an option audit does not have); its
    beta at KL weight 1 is B*D = 64 * 784 at the audit's B (a loss alone: no step to read B from)."""
    code, res, err, out = _audit(
        tmp_path, capsys, "--loss", str(EXAMPLES / "mean_bce_sum_kld.py"), "--sweep", "none", "--epochs", "2"
    )
    assert code in (0, 1), err
    assert res["data_dim"] == 784 and res["effective_beta"] == pytest.approx(64 * 784, rel=1e-9)
    assert "the built-in digits resized from 8x8 to 28x28" in (out / "report.md").read_text()


def test_loss_with_hard_coded_784_on_mnist_shaped_data(tmp_path, capsys):
    """The seed-1 loss on 28x28 data: check reads it, beta = B*D at KL weight 1."""
    x = np.random.default_rng(0).random((300, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, res, err, _ = _audit(
        tmp_path,
        capsys,
        "--loss",
        str(EXAMPLES / "mean_bce_sum_kld.py"),
        "--data",
        f"npy:{tmp_path / 'x.npy'}",
        "--sweep",
        "none",
        "--epochs",
        "1",
        "--latent-dim",
        "4",
    )
    assert code == 0, err
    assert res["effective_beta"] == 64 * 784


def test_report_is_atomic(tmp_path, capsys, monkeypatch):
    import vaeloss.audit.figures as figures

    def boom(*a, **kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(figures, "draw_all", boom)
    assert main(["audit", "--out", str(tmp_path / "r"), *FAST, "--sweep", "none", "--epochs", "1"]) == 3
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("error: this is a bug in vaeloss, please report it: RuntimeError: disk full (at ")
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


BAD = [
    pytest.param(["--data", "cifar"], r"data spec but got data='cifar'", id="unknown-data"),
    pytest.param(["--data", "mnist", "--data-dir", "{tmp}"], r"IDX files .* --download", id="missing-mnist"),
    pytest.param(
        ["--data", "npy:{tmp}/big.npy"], r"data in \[0, 1\] for a bernoulli likelihood", id="data-outside-01"
    ),
    pytest.param(["--loss", "{l1}"], r"a\*NLL \+ b\*KL that check can read", id="unreadable-loss"),
    pytest.param(["--beta", "-1"], r"number >= 0 but got beta=-1", id="negative-beta"),
    pytest.param(["--beta", "nan"], r"finite number .* beta=nan", id="nan-beta"),
    pytest.param(["--sweep", "1,x"], r"--sweep auto\|none\|X,Y", id="bad-sweep"),
    pytest.param(["--convention", "nope"], r"convention='nope'", id="unknown-convention"),
    pytest.param(["--model", "nope.py:X"], r"model='nope.py:X'", id="unknown-model"),
]


@pytest.mark.parametrize(("args", "pattern"), BAD)
def test_bad_inputs_exit_2_without_report(tmp_path, capsys, args, pattern):
    import re

    np.save(tmp_path / "big.npy", np.full((300, 5), 3.0))
    l1 = Path(__file__).parents[1] / "check" / "losses" / "quartic_recon.py"
    args = [a.format(tmp=tmp_path, l1=l1) for a in args]
    out = tmp_path / "report"
    assert main(["audit", "--out", str(out), *FAST, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(pattern, err), err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["audit", "--out", str(out), "--device", "cuda"]) == 2
    assert "torch.cuda.is_available() is False. Try --device cpu" in capsys.readouterr().err
    assert not out.exists()


USER_VAE = """
import torch
from torch import nn

class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.e = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 6))
        self.d = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 64))

    def encode(self, x):
        return self.e(x).chunk(2, -1)

    def decode(self, z):
        return self.d(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(mu), mu, logvar
"""


def test_user_model_sets_its_own_latent_dim(tmp_path, capsys):
    (tmp_path / "my_vae.py").write_text(USER_VAE)
    code, res, err, _ = _audit(
        tmp_path, capsys, "--model", f"{tmp_path / 'my_vae.py'}:VAE", "--sweep", "1,10", "--epochs", "5"
    )
    assert code == 0, err
    assert res["latent_dim"] == 3 and len(res["kl_per_dim"]) == 3
    assert len(res["sweep"]) == 2


def test_conv_model_on_28x28_data(tmp_path, capsys):
    x = np.random.default_rng(0).random((300, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, res, err, out = _audit(
        tmp_path,
        capsys,
        "--model",
        "conv",
        "--data",
        f"npy:{tmp_path / 'x.npy'}",
        "--sweep",
        "none",
        "--epochs",
        "1",
        "--latent-dim",
        "2",
    )
    assert code == 0, err
    assert res["latent_dim"] == 2 and (out / "manifold.png").exists()


WEIGHTED_LOSS = """
import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar, **kwargs):
    kld_weight = kwargs["M_N"]  # PyTorch-VAE passes the weight as a keyword
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum") / x.shape[0]
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
    return bce + kld_weight * kld
"""


def test_arg_passes_keyword_arguments_to_the_audited_loss(tmp_path, capsys):
    path = tmp_path / "weighted.py"
    path.write_text(WEIGHTED_LOSS)
    code, _, err, _ = _audit(tmp_path, capsys, "--loss", str(path), "--sweep", "none", "--epochs", "2")
    assert code == 2 and "Try --arg M_N=VALUE" in err
    code, res, err, _ = _audit(
        tmp_path, capsys, "--loss", str(path), "--arg", "M_N=0.25", "--sweep", "none", "--epochs", "2"
    )
    assert code == 0, err
    assert res["effective_beta"] == pytest.approx(0.25)  # per-sample BCE + 0.25 KL: beta = M_N
    code, _, err, _ = _audit(tmp_path, capsys, "--arg", "M_N=0.25")
    assert code == 2 and "Expected --arg only with --loss FILE[:FN]" in err


def test_a_batch_dependent_recommendation_says_its_batch_size(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        ["audit", "--out", str(out), *FAST, "--convention", "size_average", "--sweep", "0.0001,0.001"]
    )
    text = capsys.readouterr().out
    assert code == 0
    line = next(line for line in text.splitlines() if line.startswith("recommended KL weight:"))
    assert "depends on the batch size: this one holds at B = 64 only (the audit's batch size)" in line
    assert "at your batch size B use " in line and "or audit with -B <your batch size>" in line


RUN_SCRIPTS = Path(__file__).parents[1] / "check" / "run"


@pytest.mark.slow
def test_a_training_script_is_audited_in_its_own_units_at_its_own_sizes(tmp_path, capsys):
    """``inline_loop_fashion.py`` trains BCE averaged over batch and pixels + the KL summed over
    batch and latent at B=100, D=784, k=2 (its own step, read by check): its ELBO beta is
    B*D = 78,400 there (not 64*784 at the audit's B=64), and a recommended ELBO beta b is
    b / (100 * 784) in its units. It reshapes to 784 pixels, so the digits come at 28x28."""
    script = str(RUN_SCRIPTS / "inline_loop_fashion.py")
    code, res, err, out = _audit(tmp_path, capsys, "--loss", script, "--sweep", "0.0001,0.001")
    assert code in (0, 1), err
    assert res["effective_beta"] == pytest.approx(100 * 784, rel=1e-9)
    assert res["data_dim"] == 784 and res["batch_size"] == 64
    assert res["notes"][0].startswith("the built-in digits resized from 8x8 to 28x28 (bilinear")
    report = (out / "report.md").read_text()
    rec = res["recommended_beta"]
    assert rec is not None
    assert rec["own_units"] == pytest.approx(rec["elbo"] / (100 * 784), rel=1e-9)
    assert "at your sizes B=100, D=784, k=2 (read from your file by vaeloss check)" in report


SEED_LOSS = """
import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), size_average=True)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD
"""


def test_a_loss_fixed_at_784_on_data_of_another_size_says_what_works(tmp_path, capsys):
    path = tmp_path / "seed_loss.py"
    path.write_text(SEED_LOSS)
    data = tmp_path / "rows.npy"
    np.save(data, np.random.default_rng(0).random((300, 64)).astype(np.float32))
    code, _, err, _ = _audit(
        tmp_path, capsys, "--loss", str(path), "--data", f"npy:{data}", "--sweep", "none"
    )
    assert code == 2
    assert (
        err.startswith("error: Expected data of dimension D=784 for loss_function in ")
        and "but got data='npy:" in err
        and "with D=64. Try --data digits (upsampled to 28x28 for it)" in err
    )
