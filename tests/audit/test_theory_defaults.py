"""The audit with its **default** training settings against closed-form linear-VAE theory, on
generated linear-Gaussian data of several scales and noise levels (nothing tuned per data set).

Data: x = Q_3 diag(sqrt(4s, 2s, s)) z + e + 3s, z ~ N(0, I_3), e ~ N(0, nu I_16), Q_3 three
random orthonormal directions in 16 dims. Covariance eigenvalues lambda = (4s + nu, 2s + nu,
s + nu, nu, ..., nu).

Theory (Lucas et al. 2019), for a linear VAE trained on SSE + c * KL: dividing by c gives a
Gaussian likelihood with decoder variance sigma^2 = c / 2, and at the optimum latent direction i
is active iff lambda_i > sigma^2, with KL_i = 0.5 log(lambda_i / sigma^2). With c = 3.2 s the
threshold is 1.6 s: the 2 leading directions are active, the third (s + nu <= 1.3 s) and the
noise collapse.

The maximum-likelihood decoder variance of a linear model with at least 3 latent dims is the
noise variance nu: the squared-error recommendation (sigma-calibration) must find it.
"""

import json
import math

import numpy as np
import pytest

from vaeloss.cli import main

D, N = 16, 5000
LATENT = (4.0, 2.0, 1.0)


def _data(path, s, nu, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    z = rng.normal(size=(N, 3)) * np.sqrt(np.array(LATENT) * s)
    x = z @ q[:, :3].T + rng.normal(size=(N, D)) * math.sqrt(nu) + 3 * s
    np.savez(path, x=x.astype(np.float32))
    return np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("s", "nu"),
    [
        pytest.param(0.1, 0.01, id="scale-0.1-noise-0.1s"),
        pytest.param(1.0, 0.3, id="scale-1-noise-0.3s"),
        pytest.param(10.0, 2.0, id="scale-10-noise-0.2s"),
    ],
)
def test_default_audit_matches_linear_vae_theory(tmp_path, capsys, s, nu):
    lam = _data(tmp_path / "x.npz", s, nu)
    c = 3.2 * s
    sigma2 = c / 2
    code = main(
        [
            "audit",
            "--data",
            f"npz:{tmp_path}/x.npz",
            "--model",
            "linear",
            "--convention",
            "sse_sum",
            "--beta",
            repr(c),
            "--sweep",
            "none",
            "--json",
            "--out",
            str(tmp_path / "report"),
        ]
    )
    res = json.loads(capsys.readouterr().out)
    assert code == 0
    assert res["converged"] is True, res["headline"]
    k = res["latent_dim"]
    assert k == 4  # ceil(sqrt(16)): room for the 3 signal directions
    kl_theory = np.array([0.5 * math.log(v / sigma2) if v > sigma2 else 0.0 for v in lam[:k]])
    assert (kl_theory > 0).sum() == 2  # the setting must collapse some dims
    actual_kl = np.sort(np.array(res["kl_per_dim"]))[::-1]
    assert res["active_units"] == 2
    assert np.abs(actual_kl - kl_theory).max() < 0.06, (actual_kl, kl_theory)
    rec = res["recommended_beta"]
    assert rec["rule"] == "sigma-calibration"
    assert "provisional" not in rec["reason"]
    assert rec["elbo"] == pytest.approx(nu, rel=0.10)  # the decoder variance of the calibrated fit
    assert rec["own_units"] == pytest.approx(2 * nu, rel=0.10)  # SSE + c KL: c = 2 sigma^2


@pytest.mark.slow
def test_a_run_cut_short_is_reported_not_converged(tmp_path, capsys):
    _data(tmp_path / "x.npz", 1.0, 0.2)
    args = ["audit", "--data", f"npz:{tmp_path}/x.npz", "--model", "linear", "--convention", "sse_sum"]
    code = main([*args, "--sweep", "none", "--epochs", "2", "--json", "--out", str(tmp_path / "r")])
    res = json.loads(capsys.readouterr().out)
    assert code == 0
    assert res["converged"] is False
    assert res["unconverged_models"] == 1
    assert res["verdict"] == "too early to tell" and not res["collapsed"]
    assert res["headline"].startswith("too early to tell: the epoch limit ended its training after 2 epochs")
    assert res["sweep"][0]["converged"] is False and res["sweep"][0]["epochs"] == 2
    assert res["sweep"][0]["verdict"] == "too early to tell"
    assert res["recommended_beta"] is None  # the calibration stopped too early as well
    report = (tmp_path / "r" / "report.md").read_text()
    assert "no recommendation: the models stopped too early to tell" in report.lower()
    assert "0 of 1 converged. **Not converged, numbers provisional**: ELBO beta " in report
    assert "stopped by the epoch limit after 2 epochs (" in report  # then the seconds: "(1 s)."
