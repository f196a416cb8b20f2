"""`vaeloss check` on losses computed inside a model (tests/check/models/): training steps,
``loss(x, kl_weight)``, ``forward`` returning an object with ``.loss``, a ``[B, 2k]`` head,
``torch.distributions`` posteriors, a Monte-Carlo KL with a learned decoder scale. The model
decides D and k, so each case is built at two sizes with ``--init``; each expected beta is
derived by hand in the comment of its case."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from vaeloss.check.runner import check_loss
from vaeloss.cli import main

MODELS = Path(__file__).parent / "models"


class Case(NamedTuple):
    target: str
    likelihood: str
    decoder_output: str
    parameterisation: str
    beta: Callable[[int, int, int], float]
    formula: str
    taps: tuple[str, str, str]  # the submodules replaced: mu, scale, recon
    codes: set[str] = set()
    args: dict[str, object] = {}
    init: dict[str, object] = {}


CASES = {
    # (BCE sum + KLD sum) / B; the decoder tap is fc4, before the model's sigmoid: logits
    "training-step": Case(
        "lightning_style.py:LitVAE.training_step", "bernoulli", "logits", "logvar",
        lambda B, D, k: 1, "1", ("fc_mu", "fc_logvar", "fc4"),
    ),
    # batch["image"]; BCE summed per sample, mean + beta (4) * KL mean; returns {"loss": ...}
    "training-step-dict": Case(
        "lightning_style.py:LitDictVAE.training_step", "bernoulli", "logits", "logvar",
        lambda B, D, k: 4, "4", ("fc_mu", "fc_logvar", "fc4"),
    ),
    # squared error sum / B (a = 2/B) + kl_weight (0.5) * KL mean (b = 0.5/B): beta 1/4
    "loss-method": Case(
        "model_methods.py:VAE.loss", "gaussian", "mean", "logvar", lambda B, D, k: 0.25, "1/4",
        ("mean", "log_var", "dec"), args={"kl_weight": 0.5},
    ),
    # forward(inputs) -> ModelOutput(loss=...): 0.5 * squared error summed (unit Gaussian NLL) + KL
    "forward-returns-object": Case(
        "model_methods.py:PythaeLikeVAE", "gaussian", "mean", "logvar", lambda B, D, k: 1, "1",
        ("embedding", "log_covariance", "decoder"),
    ),
    # a [B, 2k] head; BCE with logits summed / numel (a = 1/(B*D)) + KL sum / B: beta D
    "joint-head": Case(
        "heads.py:HeadVAE.training_step", "bernoulli", "logits", "logvar", lambda B, D, k: D, "D",
        ("encoder.2", "encoder.2", "decoder"), {"beta-depends-on-data-dim"},
    ),
    # Normal(fc_mu, exp(fc_std)) + kl_divergence; -Bernoulli(logits).log_prob summed + 2 KL, mean
    "distributions": Case(
        "heads.py:DistVAE.step", "bernoulli", "logits", "log_std", lambda B, D, k: 2, "2",
        ("fc_mu", "fc_std", "dec"),
    ),
    # -Normal(x_hat, 0.5).log_prob summed: 4 x the unit NLL (a = 4/B); Monte-Carlo KL (b = 1/B)
    "monte-carlo-and-learned-scale": Case(
        "monte_carlo.py:MCVAE.training_step", "gaussian", "mean", "logvar", lambda B, D, k: 0.25, "1/4",
        ("fc_mu", "fc_var", "dec"), {"monte-carlo-kl", "learned-decoder-scale"},
    ),
    # Linear(D) first, decoded to 1 x side x side: flat batches fail, images work; BCE with logits
    # summed per image, mean (a = 1/B) + 0.25 * KL mean (b = 0.25/B): beta 1/4
    "image-decoder": Case(
        "lightning_style.py:LitImageVAE.training_step", "bernoulli", "logits", "logvar",
        lambda B, D, k: 0.25, "1/4", ("fc_mu", "fc_logvar", "decoder"),
    ),
    # forward stores self.loss, returns [S, B, 1, side, side]; the decoder gives S = 3 draws: BCE
    # with logits summed per draw, mean over draws and batch (a = 1/B) + beta (2) * KL mean
    "stored-loss-draws": Case(
        "stored_loss.py:SampledVAE", "bernoulli", "logits", "logvar", lambda B, D, k: 2, "2",
        ("fc_mu", "fc_logvar", "dec"),
    ),
    # the same, summed over the 3 draws (a = 3/B): beta 2/3
    "stored-loss-summed-draws": Case(
        "stored_loss.py:SummedDrawsVAE", "bernoulli", "logits", "logvar", lambda B, D, k: 2 / 3, "2/3",
        ("fc_mu", "fc_logvar", "dec"),
    ),
}  # fmt: skip

SIZES = [
    pytest.param((32, 784, 20), id="B32-D784-k20"),
    pytest.param((16, 196, 5), id="B16-D196-k5"),
]


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("case_id", list(CASES))
def test_loss_inside_a_model(case_id, sizes):
    case = CASES[case_id]
    B, D, k = sizes
    report = check_loss(
        str(MODELS / case.target),
        batch_size=B,
        init={"input_dim": D, "latent_dim": k, **case.init},
        args=case.args,
        isolate=False,
    )
    actual = report.to_json()
    assert actual["sizes"] == {"B": B, "D": D, "k": k}  # read from the model
    taps = actual["through_model"]
    assert (taps["mu"], taps["scale"], taps["recon"]) == case.taps
    assert (actual["likelihood"], actual["decoder_output"]) == (case.likelihood, case.decoder_output)
    assert actual["latent_parameterisation"] == case.parameterisation
    assert actual["effective_beta_formula"] == case.formula
    rel = 0.05 if actual["monte_carlo_kl"] else 1e-9
    assert actual["effective_beta"] == pytest.approx(case.beta(B, D, k), rel=rel)
    found = {f["code"] for f in actual["findings"]}
    assert case.codes <= found
    assert report.exit_code == 0


def test_taps_can_be_named(capsys):
    target = f"{MODELS / 'model_methods.py'}:VAE.loss"
    code = main(
        [
            "check",
            target,
            "--arg",
            "kl_weight=0.5",
            "--mu",
            "mean",
            "--scale",
            "log_var",
            "--recon",
            "dec.2",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["through_model"]["recon"] == "dec.2"
    assert data["effective_beta"] == pytest.approx(0.25)


def test_a_wrong_tap_name_is_named(capsys):
    target = f"{MODELS / 'model_methods.py'}:VAE.loss"
    assert main(["check", target, "--arg", "kl_weight=0.5", "--mu", "nope", "--scale", "log_var"]) == 2
    err = capsys.readouterr().err
    assert "--mu nope: no submodule of that name ran" in err


def test_missing_lightning_is_exit_2_saying_so(capsys, tmp_path, monkeypatch):
    """As where lightning is not installed: a package of that name first on the worker's path
    that fails to import as a missing one does."""
    hidden = tmp_path / "hidden" / "lightning"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'lightning'\", name='lightning')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hidden.parent))
    assert main(["check", f"{MODELS / 'uses_lightning.py'}:LitModel.training_step"]) == 2
    err = capsys.readouterr().err
    assert "No module named 'lightning'" in err
    assert "The module 'lightning' is not installed where vaeloss runs" in err


def test_report_says_what_was_replaced(capsys):
    assert main(["check", f"{MODELS / 'lightning_style.py'}:LitVAE.training_step", "-B", "8"]) == 0
    out = capsys.readouterr().out
    assert (
        "probed through the model: the outputs of fc_mu (mu), fc_logvar (scale) and fc4 (decoder) replaced"
        in out
    )
    assert "effective beta: 1 at B=8, D=784, k=20" in out


def test_a_flow_posterior_is_refused_not_guessed(capsys):
    """Its KL is log q(z) - log p(z) on flowed samples: close to, but not, a Gaussian KL."""
    target = f"{MODELS / 'flow_posterior.py'}:FlowVAE.training_step"
    assert main(["check", target, "-B", "32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["effective_beta"] is None and data["effective_beta_formula"] is None
    message = next(f["message"] for f in data["findings"] if f["code"] == "kl-not-gaussian")
    assert "standard errors from the best multiple of the Gaussian KL" in message
    assert "monte-carlo-kl" not in {f["code"] for f in data["findings"]}


def test_a_model_storing_its_loss_and_returning_draws(capsys):
    """``self.loss = ...`` in forward is read after each call (not a state change), the decoder's
    [S, B, D] output is S draws; the model is found without naming it."""
    assert main(["check", str(MODELS / "stored_loss.py"), "-B", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["function"] == "SampledVAE"
    assert report["through_model"]["draws"] == 3
    assert report["returns"]["read_as"] == "the attribute self.loss it sets"
    assert "state-changes-per-call" not in {f["code"] for f in report["findings"]}


def test_images_are_tried_after_a_flat_batch(capsys):
    target = f"{MODELS / 'lightning_style.py'}:LitImageVAE.training_step"
    report = check_loss(target, batch_size=8, isolate=False)
    assert report.to_json()["through_model"]["input_shape"] == [1, 28, 28]


@pytest.mark.parametrize("beta", [1.0, 2.0], ids=["default", "init"])
def test_a_real_lightning_module_is_found_and_probed_on_images(capsys, beta):
    """``vaeloss check FILE`` with no NAME: Lightning's ``training_step`` is the loss. By hand:
    BCE summed / B (a = 1/B) + hparams.beta * KL mean (b = beta/B): beta = hparams.beta; its
    decoder returns 1x28x28 images, which a flat batch cannot be compared with."""
    pytest.importorskip("lightning")
    init = ["--init", f"beta={beta}"] if beta != 1.0 else []
    assert main(["check", str(MODELS / "lightning_module.py"), "-B", "8", "--json", *init]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["function"] == "LitVAE.training_step"
    assert report["effective_beta"] == pytest.approx(beta, rel=1e-9)
    assert report["through_model"]["input_shape"] == [1, 28, 28]
    assert report["sizes"] == {"B": 8, "D": 784, "k": 16}


_KERAS_TEST_STEP = """
import importlib.util, json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import keras
import numpy as np
import torch

spec = importlib.util.spec_from_file_location("keras_model_losses", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = []
for B, kl_weight in json.loads(sys.argv[2]):
    vae = module.VAE(kl_weight=kl_weight)
    x = torch.from_numpy((np.random.default_rng(B).random((B, 28, 28, 1)) > 0.5).astype("float32"))
    keras.utils.set_random_seed(0)
    terms = {key: float(value.detach()) for key, value in vae.test_step(x).items()}
    keras.utils.set_random_seed(0)
    z_mean, z_log_var, z = vae.encoder(x)  # the same draw of z as test_step's
    arrays = (x, vae.decoder(z), z_mean, z_log_var)
    out.append([terms, *(t.detach().double().numpy().tolist() for t in arrays)])
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.xdist_group("keras-torch")
def test_keras_model_test_step_through_its_layers(capsys):
    """A Keras 3 model whose sampling layer adds the KL with ``add_loss`` and whose ``test_step``
    reads it back from ``self.losses``: no argument carries the posterior, so the model is run
    with the outputs of its ``z_mean``, ``z_log_var`` and decoder layers replaced (torch forward
    hooks: Keras layers are torch modules on its torch backend). By hand: Keras's BCE means over
    the channel axis (1 channel), summed over H, W, averaged over the batch (a = 1/B); the KL
    summed over latents, averaged over the batch in the layer (b = kl_weight/B): beta =
    kl_weight. Confirmed by the model's own test_step in Keras at two (B, kl_weight): its terms
    against torch.distributions on the encoder's and decoder's outputs for the same z."""
    import subprocess
    import sys

    import torch
    from torch.distributions import Bernoulli, Normal, kl_divergence

    sizes = [(16, 1.0), (8, 0.5)]
    done = subprocess.run(
        [sys.executable, "-c", _KERAS_TEST_STEP, str(MODELS / "keras_model_losses.py"), json.dumps(sizes)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for (B, kl_weight), (terms, *arrays) in zip(sizes, json.loads(done.stdout.splitlines()[-1])):
        x, recon, mu, logvar = (torch.tensor(a, dtype=torch.float64) for a in arrays)
        nll = -Bernoulli(probs=recon).log_prob(x).sum()
        kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum()
        assert terms["reconstruction_loss"] == pytest.approx(float(nll / B), rel=1e-5)  # float32
        assert terms["kl_loss"] == pytest.approx(float(kl / B), rel=1e-4)
        assert terms["loss"] == pytest.approx(terms["reconstruction_loss"] + kl_weight * terms["kl_loss"])

    assert (
        main(
            ["check", str(MODELS / "keras_model_losses.py"), "-B", "16", "--init", "kl_weight=0.5", "--json"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["function"] == "VAE.test_step"
    assert report["framework"] == "keras (Keras 3 on its torch backend)"
    taps = report["through_model"]
    assert (taps["mu"], taps["scale"], taps["recon"]) == ("encoder.z_mean", "encoder.z_log_var", "decoder")
    assert report["sizes"] == {"B": 16, "D": 784, "k": 2}  # read from the model's Input and z_mean
    assert (report["likelihood"], report["decoder_output"]) == ("bernoulli", "probabilities")
    assert report["effective_beta"] == pytest.approx(0.5, rel=1e-9)
    assert report["effective_beta_formula"] == "1/2"


@pytest.mark.slow
@pytest.mark.xdist_group("keras-torch")
def test_a_keras_model_on_another_backend_is_refused_naming_the_torch_one(capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    target = str(MODELS / "keras_model_losses.py")
    assert main(["check", target]) == 2
    err = capsys.readouterr().err
    assert (
        "Expected Keras's torch backend to probe VAE.test_step through VAE's layers (forward hooks replace "
        "their outputs) but got KERAS_BACKEND=tensorflow. Try 'KERAS_BACKEND=torch vaeloss check " in err
    ), err
