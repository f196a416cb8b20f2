"""`vaeloss check` over a corpus of losses in distinct conventions, each with its
hand-derived effective beta, checked at two different (B, D, k)."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from vaeloss.check.runner import check_loss
from vaeloss.cli import main

HERE = Path(__file__).parent
LOSSES = HERE / "losses"
EXAMPLES = HERE.parents[1] / "vaeloss" / "examples"


class Case(NamedTuple):
    """A loss file's expected check result, each value derived by hand."""

    likelihood: str | None
    decoder_output: str | None
    parameterisation: str | None
    output: str
    beta: Callable[[int, int, int], float] | None  # effective beta at (B, D, k)
    formula: str | None
    codes: set[str] = set()  # finding codes that must be present
    args: dict[str, object] = {}  # extra --arg values


CORPUS = {
    EXAMPLES / "mean_bce_sum_kld.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: B * D,
        formula="B*D",
        codes={"beta-depends-on-batch-size", "deprecated-reduction-argument"},
    ),
    EXAMPLES / "sum_bce_sum_kld.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    EXAMPLES / "keras_blog.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="per_sample",
        beta=lambda B, D, k: D / k,
        formula="D/k",
        codes={"per-sample-output", "beta-depends-on-data-dim"},
    ),
    EXAMPLES / "keras_docs.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    EXAMPLES / "sum_squared_error.py": Case(
        likelihood="gaussian",
        decoder_output="mean",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 0.5,
        formula="1/2",
        codes={"decoder-variance-scale"},
    ),
    EXAMPLES / "kl_weight_c.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 0.5,
        formula="1/2",
    ),
    LOSSES / "pythae_style.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "pytorch_vae_style.py": Case(
        likelihood="gaussian",
        decoder_output="mean",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 0.00025 * D / 2,
        formula="D/8000",
        codes={"beta-depends-on-data-dim"},
    ),
    LOSSES / "pytorch_examples_style.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
        codes={"hard-coded-data-dim"},
    ),
    LOSSES / "disentanglement_lib_style.py": Case(
        likelihood="bernoulli",
        decoder_output="logits",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "distributions_std.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="std",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "logits_sum.py": Case(
        likelihood="bernoulli",
        decoder_output="logits",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "log_std.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="log_std",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "variance_param.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="var",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "tuple_return.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "swapped_order.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "image_shaped.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "free_bits.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation=None,
        output="scalar",
        beta=None,
        formula=None,
        codes={"kl-not-gaussian"},
    ),
    LOSSES / "missing_half.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 2,
        formula="2",
        codes={"kl-factor-two"},
    ),
    LOSSES / "wrong_sign.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: -1,
        formula="-1",
        codes={"kl-wrong-sign"},
    ),
    LOSSES / "detached_kl.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
        codes={"no-gradient"},
    ),
    LOSSES / "mse_mean_sum_kld.py": Case(
        likelihood="gaussian",
        decoder_output="mean",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: B * D / 2,
        formula="B*D/2",
        codes={"beta-depends-on-batch-size"},
    ),
    LOSSES / "l1_recon.py": Case(  # |x - r| summed = Laplace NLL (scale 1) summed, minus B*D*log 2
        likelihood="laplace",
        decoder_output="mean",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "beta_vae.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 4,
        formula="4",
    ),
    LOSSES / "gaussian_sigma.py": Case(
        likelihood="gaussian",
        decoder_output="mean",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 0.01,
        formula="1/100",
    ),
    LOSSES / "continuous_bernoulli.py": Case(
        likelihood="continuous_bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "annealed.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 0.3,
        formula="3/10",
        args={"epoch": 30},
    ),
    LOSSES / "kl_offset.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
        codes={"kl-constant-offset"},
    ),
    LOSSES / "method_loss.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
    ),
    LOSSES / "pytorch_vae_varargs.py": Case(
        likelihood="gaussian",
        decoder_output="mean",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 0.00025 * D / 2,
        formula="D/8000",
        codes={"beta-depends-on-data-dim"},
        args={"M_N": 0.00025},
    ),
    LOSSES / "mean_everything.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: D / k,
        formula="D/k",
        codes={"beta-depends-on-latent-dim"},
    ),
    # regression: nn.BCELoss(...)(recon_x, x) applied inline was read as the model's output,
    # and the function refused ("reads logvar, mu, BCE, and no posterior mean")
    LOSSES / "bce_module_in_function.py": Case(
        likelihood="bernoulli",
        decoder_output="probabilities",
        parameterisation="logvar",
        output="scalar",
        beta=lambda B, D, k: 1,
        formula="1",
        codes={"hard-coded-data-dim"},
    ),
}
HARD_CODED_784 = {"mean_bce_sum_kld.py", "pytorch_examples_style.py", "bce_module_in_function.py"}
ERROR_CODES = {"beta-depends-on-batch-size", "kl-wrong-sign", "no-gradient", "non-finite-at-edges"}


def _sizes(path):
    first = (128, 784, 20)
    second = (16, 784, 5) if path.name in HARD_CODED_784 else (16, 196, 5)
    return [
        pytest.param(path, first, id=f"{path.stem}-B128-D784-k20"),
        pytest.param(path, second, id=f"{path.stem}-B{second[0]}-D{second[1]}-k{second[2]}"),
    ]


@pytest.mark.parametrize(("path", "sizes"), [p for path in CORPUS for p in _sizes(path)])
def test_corpus(path, sizes):
    case = CORPUS[path]
    B, D, k = sizes
    report = check_loss(str(path), batch_size=B, data_dim=D, latent_dim=k, args=case.args, isolate=False)
    actual = report.to_json()
    assert (actual["likelihood"], actual["decoder_output"]) == (case.likelihood, case.decoder_output)
    assert actual["latent_parameterisation"] == case.parameterisation
    assert actual["output"] == case.output
    assert actual["effective_beta_formula"] == case.formula
    if case.beta is None:
        assert actual["effective_beta"] is None
    else:
        expected = case.beta(B, D, k)
        assert actual["effective_beta"] == pytest.approx(expected, rel=1e-9)
        assert actual["kl_weight_for_elbo"] == pytest.approx(1 / expected, rel=1e-9)
        if case.likelihood == "gaussian":
            assert actual["implied_decoder_variance"] == pytest.approx(expected, rel=1e-9)
    found = {f["code"] for f in actual["findings"]}
    assert case.codes <= found
    assert report.exit_code == (1 if found & ERROR_CODES else 0)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 20


def test_defaults_are_used_and_weight_parameter_found():
    report = check_loss(str(LOSSES / "pytorch_vae_style.py"), isolate=False)
    assert report.defaults == {"kld_weight": 0.00025}
    assert report.kl_weight_parameter == "kld_weight"
    assert "set kld_weight=" not in report.fix  # its beta depends on D, so the fix is structural
    beta = check_loss(str(LOSSES / "beta_vae.py"), isolate=False)
    assert beta.kl_weight_parameter == "beta"
    assert "set beta=1." in beta.fix


def test_arg_overrides_default():
    report = check_loss(str(LOSSES / "beta_vae.py"), args={"beta": 2.0}, isolate=False)
    assert report.effective_beta == pytest.approx(2.0)


def test_findings_point_at_lines():
    report = check_loss(str(EXAMPLES / "mean_bce_sum_kld.py"), isolate=False)
    by = {f.code: f for f in report.findings}
    assert by["deprecated-reduction-argument"].line == 6
    assert by["beta-depends-on-batch-size"].line == 6


def test_named_function_with_a_loss_module_applied_inline(capsys):
    """``FILE:vae_loss`` is that function, checked as written (not re-read as an inline loss)."""
    assert main(["check", f"{LOSSES / 'bce_module_in_function.py'}:vae_loss", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["function"] == "vae_loss"
    assert data["effective_beta"] == pytest.approx(1.0)


def test_data_dim_findings_agree_when_the_loss_hard_codes_784():
    """beta-depends-on-data-dim ("scales as D^-1") and hard-coded-data-dim said "how they scale with D
    is unknown" side by side; both now say the D is read from the factors' values at D=784."""
    report = check_loss(str(EXAMPLES / "mean_bce_sum_kld.py"), isolate=False)
    by = {f.code: f.message for f in report.findings}
    assert "unknown" not in by["hard-coded-data-dim"]
    assert by["hard-coded-data-dim"].endswith(
        "so the formulas are checked at D=784 only: their D is read from the factors' values there "
        "(a factor 1/784 as 1/D), not measured at another D."
    )
    assert "(read from the factors' values at the fixed D=784" in by["beta-depends-on-data-dim"]


def test_headline_example_via_cli(capsys):
    code = main(["check", str(EXAMPLES / "mean_bce_sum_kld.py")])
    out = capsys.readouterr().out
    assert code == 1
    assert "effective beta: B*D = 100,352 at B=128, D=784, k=20" in out
    assert "changes with the batch size" in out
    assert "fix: Reduce both terms the same way" in out


def test_json_keys_via_cli(capsys):
    assert main(["check", f"{EXAMPLES / 'keras_blog.py'}:vae_loss", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "function",
        "likelihood",
        "decoder_output",
        "latent_parameterisation",
        "output",
        "effective_beta",
        "effective_beta_formula",
        "implied_decoder_variance",
        "gradient_scale",
        "kl_weight_for_elbo",
        "findings",
    ):
        assert key in data
    assert data["effective_beta"] == pytest.approx(784 / 20)
    assert all({"code", "severity", "message", "line"} <= set(f) for f in data["findings"])


def test_expect_beta(capsys):
    assert main(["check", str(EXAMPLES / "keras_docs.py"), "--expect-beta", "1"]) == 0
    capsys.readouterr()
    assert main(["check", str(EXAMPLES / "keras_docs.py"), "--expect-beta", "2", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in data["findings"] if f["severity"] == "error"] == ["expect-beta-mismatch"]
