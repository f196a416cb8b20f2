"""`vaeloss audit --model FILE:Class`: users' models as they are written (scripts, packages,
constructor arguments, image inputs, PyTorch-VAE's interface), their decoder's output read as
it is, measured in eval(), batched with torch.func or looped with the reason said."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from vaeloss.cli import main

MODELS = Path(__file__).parent / "models"
QUICK = ["--sweep", "none", "--epochs", "2", "--eval-budget", "3", "--iwae-samples", "64", "--json"]


@pytest.fixture(scope="module")
def digits28(tmp_path_factory):
    """The 1,797 scikit-learn digits upsampled to 28x28, in [0, 1] (an MNIST-shaped data set)."""
    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16
    x28 = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear").clamp(0, 1)
    path = tmp_path_factory.mktemp("data") / "digits28.npz"
    np.savez(path, x=x28.numpy())
    return f"npz:{path}"


@pytest.fixture
def models(tmp_path):
    """A copy of the model files, so that a test can see that nothing is written next to them."""
    dest = tmp_path / "models"
    shutil.copytree(MODELS, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _audit(tmp_path, capsys, *args):
    code = main(["audit", "--out", str(tmp_path / "report"), *args])
    captured = capsys.readouterr()
    res = json.loads(captured.out) if code in (0, 1) else None
    return code, res, captured.err


@pytest.mark.slow
def test_seed_conv_vae_script_audited_as_written(tmp_path, capsys, models, digits28):
    before = _files(models)
    code, res, err = _audit(
        tmp_path,
        capsys,
        "--model",
        f"{models}/seed_conv_vae.py:VAE",
        "--loss",
        f"{models}/seed_conv_vae.py:loss_function",
        "--data",
        digits28,
        *QUICK,
    )
    assert code == 0, err
    assert res["decoder_output"] == "probabilities"  # not logits: the sigmoid is applied once
    assert res["decoder_how"] == "read as probabilities: its last operation is sigmoid"
    assert res["model_interface"].startswith("encode(x) -> (mu, logvar) on inputs of shape [N, 1x28x28]")
    assert res["stacking"].startswith("batched")
    assert res["latent_dim"] == 2  # its argparse default, read without running the script
    assert res["effective_beta"] == pytest.approx(1.0)  # BCE sum + KLD sum: the ELBO
    # two epochs are too few to judge: the measured numbers are shown, no verdict is given
    assert res["converged"] is False and res["verdict"] == "too early to tell"
    assert res["headline"].startswith(
        "too early to tell: the epoch limit ended its training after 2 epochs, before its progress "
        "could be measured (a verdict needs more than 5 epochs); so far "
    )
    assert _files(models) == before  # no MNIST download, no checkpoints, no __pycache__


@pytest.mark.slow
def test_pytorch_vae_shaped_package_audited_as_written(tmp_path, capsys, models, digits28):
    code, res, err = _audit(
        tmp_path,
        capsys,
        "--model",
        f"{models}/pvae/models/vanilla_vae.py:VanillaVAE",
        "--init",
        "in_channels=1",
        "--init",
        "latent_dim=4",
        "--convention",
        "pytorch_vae",
        "--data",
        digits28,
        *QUICK,
    )
    assert code == 0, err
    assert res["model_interface"].startswith("encode(x) -> (mu, logvar) on inputs of shape [N, 1x28x28]")
    assert res["decoder_output"] == "mean"
    assert res["decoder_how"] == "read as a mean in [-1, 1]: its last operation is tanh"
    assert res["stacking"].startswith("batched")  # BatchNorm included
    assert res["latent_dim"] == 4
    # pytorch_vae: F.mse_loss (mean over B*D) + kld_weight * KL (mean over B), kld_weight 0.00025
    assert res["effective_beta"] == pytest.approx(784 / 8000)


def test_constructor_arguments_are_named_when_missing(tmp_path, capsys, models):
    code, _, err = _audit(tmp_path, capsys, "--model", f"{models}/activations.py:NeedsLatentDim", *QUICK)
    assert code == 2
    assert (
        "required argument(s) latent_dim of NeedsLatentDim() but got none. Try --init latent_dim=VALUE" in err
    )


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        pytest.param(["-k", "4"], "Expected no --latent-dim with your own model", id="latent-dim"),
        pytest.param(["--hidden", "32"], "Expected no --hidden with your own model", id="hidden"),
    ],
)
def test_the_model_decides_its_sizes(tmp_path, capsys, models, extra, match):
    code, _, err = _audit(tmp_path, capsys, "--model", f"{models}/activations.py:SigmoidVAE", *extra, *QUICK)
    assert code == 2 and match in err and "Try --init NAME=VALUE" in err


def test_user_model_options_need_a_user_model(tmp_path, capsys):
    code, _, err = _audit(tmp_path, capsys, "--decoder-output", "probs", *QUICK)
    assert code == 2 and "Expected --decoder-output only with your own model" in err


def test_an_api_probing_cannot_find_names_model_api(tmp_path, capsys, models):
    code, _, err = _audit(tmp_path, capsys, "--model", f"{models}/activations.py:Heads", *QUICK)
    assert code == 2
    assert "encode(x of shape [2, 64]) returned a tuple of" in err
    assert "Try --model-api METHOD:NAMES" in err
    code, res, err = _audit(
        tmp_path,
        capsys,
        "--model",
        f"{models}/activations.py:Heads",
        "--model-api",
        "encode:std,mu,_",
        *QUICK,
    )
    assert code == 0, err
    assert res["model_interface"].startswith("encode(x) -> (std, mu, _)")


def test_tanh_decoder_with_a_bernoulli_loss_is_exit_2(tmp_path, capsys, models):
    code, _, err = _audit(tmp_path, capsys, "--model", f"{models}/activations.py:TanhVAE", *QUICK)
    assert code == 2
    assert "Expected a decoder that emits probabilities or logits for a bernoulli loss" in err
    assert "(its last operation is tanh)" in err


def test_data_outside_the_decoders_range_is_exit_2(tmp_path, capsys, models):
    x = np.random.default_rng(0).normal(size=(400, 64)).astype(np.float32)
    np.savez(tmp_path / "signed.npz", x=x)
    code, _, err = _audit(
        tmp_path,
        capsys,
        "--model",
        f"{models}/activations.py:SigmoidVAE",
        "--convention",
        "sse_sum",
        "--data",
        f"npz:{tmp_path}/signed.npz",
        *QUICK,
    )
    assert code == 2
    assert "Expected data within the decoder's output range [0, 1] (its last operation is sigmoid)" in err


def test_loss_reading_logits_from_a_sigmoid_decoder_is_noted(tmp_path, capsys, models):
    loss = tmp_path / "logits_loss.py"
    loss.write_text(
        "import torch\nimport torch.nn.functional as F\n\n"
        "def loss_function(recon_x, x, mu, logvar):\n"
        "    bce = F.binary_cross_entropy_with_logits(recon_x, x.view(-1, 64), reduction='sum')\n"
        "    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())\n"
    )
    code, res, err = _audit(
        tmp_path, capsys, "--model", f"{models}/activations.py:SigmoidVAE", "--loss", str(loss), *QUICK
    )
    assert code == 0, err
    assert res["decoder_output"] == "probabilities"
    assert any("the sigmoid is applied twice" in n for n in res["notes"])


def test_a_model_vmap_cannot_run_is_looped_and_the_report_says_why(tmp_path, capsys, models):
    code, res, err = _audit(tmp_path, capsys, "--model", f"{models}/activations.py:ItemInDecode", *QUICK)
    assert code == 0, err
    assert res["stacking"].startswith("one copy after the other (vmap cannot run this model: ")
    assert "item" in res["stacking"]
    assert "Sweep copies run one copy after the other" in (tmp_path / "report" / "report.md").read_text()


def test_override_decoder_output(tmp_path, capsys, models):
    model = f"{models}/activations.py:SmallLogits"
    code, res, err = _audit(tmp_path / "detected", capsys, "--model", model, *QUICK)
    assert code == 0, err
    assert res["decoder_output"] == "probabilities"
    assert "outputs on 256 prior samples all lie in [0, 1]" in res["decoder_how"]
    code, res, err = _audit(
        tmp_path / "stated", capsys, "--model", model, "--decoder-output", "logits", *QUICK
    )
    assert code == 0, err
    assert res["decoder_output"] == "logits" and res["decoder_how"].endswith("--decoder-output logits")


def test_probs_stated_for_a_decoder_outside_0_1_is_exit_2(tmp_path, capsys, models):
    code, _, err = _audit(
        tmp_path, capsys, "--model", f"{models}/activations.py:LogitVAE", "--decoder-output", "probs", *QUICK
    )
    assert code == 2
    assert "Expected decoder outputs in [0, 1] for --decoder-output probs but decode(z) gave values in" in err
    assert "Try --decoder-output logits" in err


def _verdicts(tmp_path, capsys, cls, *args):
    code, res, err = _audit(
        tmp_path, capsys, "--model", f"{MODELS}/activations.py:{cls}", "--json", "--eval-budget", "5", *args
    )
    assert code == 0, err
    return [row["verdict"] for row in res["sweep"]], res


@pytest.mark.slow
@pytest.mark.parametrize(
    ("convention", "sweep", "classes"),
    [
        pytest.param("sse_sum", "0.2,200", ("SigmoidVAE", "TanhVAE", "LogitVAE"), id="gaussian"),
        pytest.param("per_sample_mean", "1,100", ("SigmoidVAE", "LogitVAE"), id="bernoulli"),
    ],
)
def test_sigmoid_tanh_and_logits_decoders_get_the_same_verdict(tmp_path, capsys, convention, sweep, classes):
    """The same model with its output squashed differently: at a beta that keeps dims active
    and at one that collapses them, every variant gets the same verdict (a sigmoid read as
    logits would have collapsed at both). Slow (two or three audits trained to convergence,
    20 to 60 s): the verdict of a model stopped early would be "too early to tell"."""
    results = {
        cls: _verdicts(
            tmp_path / cls, capsys, cls, "--convention", convention, "--sweep", sweep, "--beta", "1"
        )
        for cls in classes
    }
    verdicts = {cls: v for cls, (v, _) in results.items()}
    first = verdicts[classes[0]]
    assert "posterior collapse" in first and "healthy" in first
    assert all(v == first for v in verdicts.values()), verdicts
    kinds = {cls: res["decoder_output"] for cls, (_, res) in results.items()}
    expected = {"SigmoidVAE": "probabilities" if convention == "per_sample_mean" else "mean"}
    expected |= {"TanhVAE": "mean", "LogitVAE": "logits" if convention == "per_sample_mean" else "mean"}
    assert kinds == {cls: expected[cls] for cls in classes}


@pytest.mark.slow
def test_batchnorm_dropout_model_is_measured_in_eval_mode(tmp_path, capsys, monkeypatch):
    """The metrics are taken with the model in eval(): Dropout off, BatchNorm on its running
    statistics (every encode the evaluation makes sees a model not in training mode)."""
    import vaeloss.engine.evaluate as evaluate

    seen = []
    real = evaluate.evaluate_models

    def spy(model, *args, **kwargs):
        out = real(model, *args, **kwargs)
        seen.append(model.training)
        return out

    monkeypatch.setattr("vaeloss.audit.execute.evaluate_models", spy)
    code, res, err = _audit(
        tmp_path, capsys, "--model", f"{MODELS}/activations.py:BatchNormDropoutVAE", *QUICK
    )
    assert code == 0, err
    assert seen == [False]
    assert res["stacking"].startswith("batched")


def test_an_error_inside_the_model_during_training_names_the_model_and_line(tmp_path, capsys, models):
    code, _, err = _audit(tmp_path, capsys, "--model", f"{models}/activations.py:FailsInTraining", *QUICK)
    assert code == 2
    assert "this is a bug in vaeloss" not in err
    assert (
        f"Expected your model {models}/activations.py:FailsInTraining to run during the audit's training "
        "but it raised RuntimeError: boom in training (at line" in err
    )
    assert 'of activations.py: raise RuntimeError("boom in training"))' in err
    assert not (tmp_path / "report").exists()


SIGMOID_MSE = (
    "import torch\nimport torch.nn.functional as F\n\n"
    "def loss_function(recon_x, x, mu, logvar):\n"
    "    mse = F.mse_loss(torch.sigmoid(recon_x), x.view(-1, 64), reduction='sum')\n"
    "    return mse - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())\n"
)


@pytest.mark.parametrize(
    ("cls", "expected", "note"),
    [
        pytest.param("LogitVAE", "logits", False, id="raw-output-read-as-logits-as-the-loss-does"),
        pytest.param("SigmoidVAE", "mean", True, id="sigmoid-in-model-and-loss-noted"),
    ],
)
def test_squared_error_on_the_sigmoid_of_the_output(tmp_path, capsys, models, cls, expected, note):
    loss = tmp_path / "sigmoid_mse.py"
    loss.write_text(SIGMOID_MSE)
    code, res, err = _audit(
        tmp_path, capsys, "--model", f"{models}/activations.py:{cls}", "--loss", str(loss), *QUICK
    )
    assert code == 0, err
    assert res["likelihood"] == "gaussian" and res["decoder_output"] == expected
    assert any("the sigmoid is applied twice" in n for n in res["notes"]) == note


def test_a_loss_check_cannot_read_says_what_to_do(tmp_path, capsys):
    loss = tmp_path / "dict_loss.py"
    loss.write_text(
        "import torch\nimport torch.nn.functional as F\n\n"
        "def loss_fn(out, x):\n"
        "    kl = -0.5 * torch.sum(1 + out['log_var'] - out['mu'] ** 2 - out['log_var'].exp())\n"
        "    return F.mse_loss(out['recon'], x) + kl\n"
    )
    code, _, err = _audit(tmp_path, capsys, "--loss", f"{loss}:loss_fn", *QUICK)
    assert code == 2
    assert "no way to pass (reconstruction, data, mu, logvar) to its parameters" in err
    assert "Try --convention NAME for the convention your loss follows" in err
