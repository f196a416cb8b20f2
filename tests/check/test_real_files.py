"""`vaeloss check` on files shaped like the ones users have (tests/check/real/): a training
script, a notebook, a package with relative imports, loss classes and objects, factories,
packed and distribution arguments, components, dict keys, other likelihoods. Each expected
beta is derived by hand in the comment of its case, and checked at two (B, D, k)."""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from vaeloss.check.runner import check_loss
from vaeloss.cli import main

REAL = Path(__file__).parent / "real"
LOSSES = Path(__file__).parent / "losses"


class Case(NamedTuple):
    target: str
    likelihood: str | None
    decoder_output: str | None
    parameterisation: str | None
    beta: Callable[[int, int, int], float] | None
    formula: str | None
    codes: set[str] = set()
    init: dict[str, object] = {}
    args: dict[str, object] = {}
    fixed_d: bool = False  # the loss takes only D = 784
    returns: str = "value"
    second: tuple[int, int, int] = (16, 196, 5)


CASES = {
    # BCE sum + args.beta (default 1.0) * KLD sum: a = 1, b = 1; x.view(-1, 784) fixes D
    "training-script": Case(
        "train_script.py", "bernoulli", "probabilities", "logvar", lambda B, D, k: 1, "1",
        {"hard-coded-data-dim"}, fixed_d=True,
    ),
    # cells: bce sum / B, kld_weight = 0.5 (another cell) * mean over batch of KL sums: beta 1/2
    "notebook": Case(
        "notebook_vae.ipynb", "bernoulli", "probabilities", "logvar", lambda B, D, k: 0.5, "1/2",
        {"hard-coded-data-dim"}, fixed_d=True,
    ),
    # per sample: squared error summed (= 2 x unit Gaussian NLL) + 4 * KL, mean: beta 4/2 = 2
    "package-relative-imports": Case(
        "vaepkg/losses.py", "gaussian", "mean", "logvar", lambda B, D, k: 2, "2"
    ),
    # BCE with logits summed per sample + beta * KL, mean over batch: beta = --init beta
    "class-with-call": Case(
        "call_class.py:ELBOLoss", "bernoulli", "logits", "logvar", lambda B, D, k: 0.25, "1/4",
        init={"beta": 0.25},
    ),
    # (sum of squared errors + 4 * KLD sum) / B: a = 2/B, b = 4/B, beta 2; chosen by its name
    "module-with-self-beta": Case("module_loss.py", "gaussian", "mean", "logvar", lambda B, D, k: 2, "2"),
    # mse mean over B*D (a = 2/(B*D)) + 0.001 * KL mean over batch (b = 0.001/B): beta 0.001 D / 2
    "method-with-init": Case(
        "model_method.py:ConvVAE.loss_function", "gaussian", "mean", "logvar", lambda B, D, k: D / 2000,
        "D/2000", {"state-changes-per-call", "beta-depends-on-data-dim"},
        init={"in_channels": 1, "latent_dim": 20},
    ),
    # the factory's loss: (BCE sum + beta KLD sum) / B with beta = 3
    "factory": Case("factory.py:make_vae_loss", "bernoulli", "probabilities", "logvar",
                    lambda B, D, k: 3, "3",
                    init={"beta": 3}),
    # vae_loss(x, (x_hat, mu, logvar)): (BCE sum + KL sum) / B
    "packed-tuple-argument": Case(
        "packed_args.py", "bernoulli", "probabilities", "logvar", lambda B, D, k: 1, "1"
    ),
    # -(log p(x|z) - 0.5 KL(q || p)).mean(): beta 1/2; the posterior is Normal(mu, std); the
    # likelihood is px's, the user's decoder's (the probe's Bernoulli stand-in was reported)
    "distribution-arguments": Case(
        "distribution_args.py", "decoder distribution", None, "std", lambda B, D, k: 0.5, "1/2"
    ),
    # (sum of squared errors, KL sum) returned apart: a = 2, b = 1 when added: beta 1/2
    "components": Case(
        "components.py", "gaussian", "mean", "logvar", lambda B, D, k: 0.5, "1/2", {"returns-components"},
        returns="components",
    ),
    # (mse mean, KL mean over batch, 0.00025): a = 2/(B*D), b = 1/B when added: beta D/2
    "components-and-weight": Case(
        "components_weight.py", "gaussian", "mean", "logvar", lambda B, D, k: D / 2, "D/2",
        {"returns-components"}, returns="components",
    ),
    # {"Loss": mse mean + 0.005 * KL mean}: a = 2/(B*D), b = 0.005/B: beta 0.005 D / 2 = D/400
    "dict-key-Loss": Case("dict_key.py", "gaussian", "mean", "logvar", lambda B, D, k: D / 400, "D/400",
                          {"beta-depends-on-data-dim"}),
    # (BCE sum + KL sum).reshape(1)
    "one-element-tensor": Case(
        "one_element.py", "bernoulli", "probabilities", "logvar", lambda B, D, k: 1, "1"
    ),
    # Mult-VAE: -mean(sum(log_softmax * x)) + 0.2 * KL mean: a = 1/B, b = 0.2/B
    "multinomial": Case("mult_vae.py", "multinomial", "logits", "logvar", lambda B, D, k: 0.2, "1/5"),
    # L1 mean over B*D (Laplace NLL, a = 1/(B*D)) + 1e-3 * KL mean over batch: beta 1e-3 D
    "laplace": Case("l1_mean.py", "laplace", "mean", "logvar", lambda B, D, k: D / 1000, "D/1000",
                    {"beta-depends-on-data-dim"}),
    # squared error of sigmoid(logits) summed (a = 2) + KL sum (b = 1)
    "gaussian-on-sigmoid": Case("sigmoid_mse.py", "gaussian", "logits", "logvar", lambda B, D, k: 0.5, "1/2"),
    # BCE sum + a one-sample Monte-Carlo KL summed: beta 1 in expectation
    "monte-carlo-kl": Case("mc_kl.py", "bernoulli", "probabilities", "logvar", lambda B, D, k: 1, "1",
                           {"monte-carlo-kl"}, second=(32, 196, 10)),
    # the same, at the z the model sampled and passed in (drawn by the probe from q): beta 1
    "monte-carlo-kl-on-a-given-z": Case(
        "mc_kl_given_z.py", "bernoulli", "probabilities", "logvar", lambda B, D, k: 1, "1",
        {"monte-carlo-kl"}, second=(32, 196, 10),
    ),
    # half the squared error + log q(z) - log p(z) written with the posterior's std, summed, / B:
    # beta 1, the std parameterisation found from how z must be drawn for the KL to fit
    "monte-carlo-kl-on-a-given-z-std": Case(
        "mc_kl_given_z_std.py", "gaussian", "mean", "std", lambda B, D, k: 1, "1",
        {"monte-carlo-kl"}, second=(32, 196, 10),
    ),
    # loss_fn defined inside main(args), reading args.kl_weight (1.0, the parser's default under
    # the main guard): (BCE sum + KLD sum) / B (its view(-1, 28 * 28) keeps the sum whatever D).
    # It was refused: "the loss computed inline ... is none: it reads args, device, vae, x, y"
    "nested-in-main": Case(
        "nested_loss_fn.py", "bernoulli", "probabilities", "logvar", lambda B, D, k: 1, "1"
    ),
    # four candidates: the full loss (BCE sum + KLD sum) is chosen over the helpers
    "several-candidates": Case("several_candidates.py", "bernoulli", "probabilities", "logvar",
                               lambda B, D, k: 1, "1"),
    # a quartic reconstruction is no likelihood: no beta
    "unsupported-reconstruction": Case(
        str(LOSSES / "quartic_recon.py"), None, None, "logvar", None, None, {"recon-not-a-likelihood"}
    ),
}  # fmt: skip


def test_a_nested_loss_is_named_by_its_outer_function(capsys):
    """``FILE:main.loss_fn`` names it; its argparse value comes from the parser under the main guard."""
    code = main(["check", f"{REAL / 'nested_loss_fn.py'}:main.loss_fn", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["function"] == "main.loss_fn"
    assert report["effective_beta"] == pytest.approx(1.0, rel=1e-9)


def _sizes(case_id):
    second = (16, 784, 5) if CASES[case_id].fixed_d else CASES[case_id].second
    return [
        pytest.param(case_id, (128, 784, 20), id=f"{case_id}-B128-D784-k20"),
        pytest.param(case_id, second, id=f"{case_id}-B{second[0]}-D{second[1]}-k{second[2]}"),
    ]


@pytest.mark.parametrize(("case_id", "sizes"), [p for c in CASES for p in _sizes(c)])
def test_real_file(case_id, sizes, monkeypatch):
    case = CASES[case_id]
    monkeypatch.chdir(REAL)
    B, D, k = sizes
    report = check_loss(
        case.target, batch_size=B, data_dim=D, latent_dim=k, init=case.init, args=case.args, isolate=False
    )
    actual = report.to_json()
    assert (actual["likelihood"], actual["decoder_output"]) == (case.likelihood, case.decoder_output)
    assert actual["latent_parameterisation"] == case.parameterisation
    assert actual["effective_beta_formula"] == case.formula
    if case.beta is None:
        assert actual["effective_beta"] is None
    else:
        rel = 0.05 if actual["monte_carlo_kl"] else 1e-9
        assert actual["effective_beta"] == pytest.approx(case.beta(B, D, k), rel=rel)
    assert actual["formula_fixed_dims"] == (["D"] if case.fixed_d else [])
    assert actual["returns"]["form"] == case.returns
    found = {f["code"] for f in actual["findings"]}
    assert case.codes <= found
    assert "no-gradient" not in found  # never a false error on these
    assert report.exit_code == 0


def test_real_file_corpus_covers_every_class():
    assert len(CASES) >= 18


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_training_script_runs_nothing_and_writes_nothing(tmp_path):
    """In a subprocess, as a user runs it: argparse sees the worker's own argv (no --data), the
    download, the loop, the checkpoint saves and the log file do not happen."""
    project = tmp_path / "project" / "vae"
    project.mkdir(parents=True)
    shutil.copy(REAL / "train_script.py", project / "main.py")
    before = _tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "vaeloss", "check", "main.py", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["effective_beta"] == 1 and data["function"] == "loss_function"
    assert _tree(tmp_path) == before  # no ../data, results/, train.log or __pycache__

    def reason(start):
        return next(s["reason"] for s in data["statements_not_run"] if s["code"].startswith(start))

    assert reason("for epoch in range") == "a top-level loop is not run"
    assert reason("if __name__ ==") == "the `if __name__ == '__main__':` block is not run"
    assert reason('with open("train.log"') == "a top-level `with` block is not run"
    assert reason("os.makedirs") == "a top-level call or expression is not run"
    assert "does not let the checked code change files (os.mkdir" in reason("train_loader")


def test_notebook_lines_are_cells(capsys, monkeypatch):
    monkeypatch.chdir(REAL)
    assert main(["check", "notebook_vae.ipynb"]) == 0
    out = capsys.readouterr().out
    assert "effective beta: 1/2 = 0.5 at B=128, D=784, k=20" in out or "effective beta: 0.5 at" in out
    # the loss is in the 4th code cell: bce on its 2nd line, the loop cells are not run
    assert "bce-on-continuous-data (cell 4, line 2)" in out
    assert "1 loop (cell 6, line 1)" in out


def test_package_module_name_and_path_agree(monkeypatch):
    monkeypatch.chdir(REAL)
    by_path = check_loss("vaepkg/losses.py", isolate=False)
    by_module = check_loss("vaepkg.losses:vae_loss", isolate=False)
    assert by_path.effective_beta == by_module.effective_beta == pytest.approx(2.0)
    assert by_path.kl_weight_parameter == "beta"


def test_missing_constructor_arguments_are_named(capsys, monkeypatch):
    monkeypatch.chdir(REAL)
    assert main(["check", "model_method.py:ConvVAE.loss_function"]) == 2
    err = capsys.readouterr().err
    assert (
        "Expected values for the required argument(s) in_channels, latent_dim of ConvVAE() but got none. "
        "Try --init in_channels=VALUE --init latent_dim=VALUE" in err
    )


def test_components_say_what_a_weight_would_do(capsys, monkeypatch):
    monkeypatch.chdir(REAL)
    assert main(["check", "components_weight.py", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    text = next(f["message"] for f in data["findings"] if f["code"] == "returns-components")
    # beta D/2 = 392 at D = 784; times the returned 0.00025: 0.098
    assert "value 0 is the reconstruction term and value 1 the KL term" in text
    assert "Value 2 is the number 0.00025, the same for every input: if your loop multiplies the KL " in text
    assert "the effective beta is 0.098 instead" in text


def test_other_candidates_are_listed(capsys, monkeypatch):
    monkeypatch.chdir(REAL)
    assert main(["check", "several_candidates.py"]) == 0
    out = capsys.readouterr().out
    assert (
        "several_candidates.py:vae_loss  ('vae_loss': the one candidate that probes as a whole VAE loss)"
        in out
    )
    assert "also a candidate: ae_mse_loss (a reconstruction term only); check it with" in out
    assert "also a candidate: KLD (a KL term only)" in out


def test_json_on_failure_is_one_object(capsys, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def loss(:\n")
    assert main(["check", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["exit_code"] == 2 and "syntax error at line 1" in data["error"]
    assert captured.err.startswith("error: ")
