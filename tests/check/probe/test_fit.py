"""The fit's tolerance floor for a term measured through differences of a much larger loss, and
the finding when the floor is past what can tell a parameterisation (by hand: the changes of a
KL term that is 1e-9 and 1e-13 of the loss's value)."""

import math
from types import SimpleNamespace

import pytest

from vaeloss.check.findings import _kl_not_gaussian, _term_below_rounding
from vaeloss.check.probe.fit import Observations, fit_element
from vaeloss.check.result import ROUNDING_CAP, TOLERANCE

KL_REF = [1.0, 2.0, -1.5, 0.5, 3.0, -2.0]  # the reference KL's changes at six latent probes
NLL_REF = [1.0, -0.5, 2.0]


def _fit(kl_weight, misfit, loss=1e7):
    """A loss of value ``loss`` whose latent changes are ``kl_weight`` times the reference's,
    the first off by ``misfit`` (relative), as rounding would leave them."""
    latent = [kl_weight * d for d in KL_REF]
    latent[0] *= 1 + misfit
    obs = Observations(base=loss, recon=[5.0 * d for d in NLL_REF], latent=latent, latent_se=[0.0] * 6)
    return fit_element(obs, {("bernoulli", "probabilities"): (0.0, NLL_REF)}, {"logvar": (0.0, KL_REF)})


def test_a_small_terms_misfit_within_its_rounding_passes():
    # changes 1e-9 of the loss: rounding alone can misfit them by 64 * 2^-52 * 1e7 * sqrt(6) / |changes|
    fit = _fit(1e-2, 2e-5)
    expected = 64 * 2.0**-52 * 1e7 * math.sqrt(6) / math.sqrt(sum((1e-2 * d) ** 2 for d in KL_REF))
    assert fit.kl_rounding == pytest.approx(expected, rel=1e-3)
    assert TOLERANCE < fit.kl_residual < fit.kl_rounding < ROUNDING_CAP
    assert fit.kl_ok and fit.b == pytest.approx(1e-2, rel=1e-5)


def test_a_misfit_beyond_the_rounding_still_fails():
    fit = _fit(1e-2, 5e-2)  # 5%: another parameterisation, not rounding
    assert not fit.kl_ok


def _report(fit):
    return SimpleNamespace(probe=SimpleNamespace(kl_fit=fit, recon_fit=fit))


def test_a_term_too_small_to_measure_is_said_so_not_called_another_kl():
    fit = _fit(1e-5, 1e-2)  # changes ~1e-12 of the loss: the floor is past ROUNDING_CAP
    assert fit.kl_rounding > ROUNDING_CAP and not fit.kl_ok
    ctx = SimpleNamespace(first=lambda *keys: 7)
    (message, line), *_ = list(_term_below_rounding(_report(fit), ctx))
    assert line == 7
    assert message.startswith("the KL term changes the loss by so little next to its value that rounding")
    assert (
        "no effective beta can be given" in message
        and "is its weight or reduction what you meant?" in message
    )
    assert list(_kl_not_gaussian(_report(fit), ctx)) == []  # not "not a multiple of the Gaussian KL"
