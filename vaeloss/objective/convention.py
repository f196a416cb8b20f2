r"""Loss conventions as values, and what objective each one really is.

A VAE loss built from the usual pieces is

.. math::

    L = a \sum_{b,i} \mathrm{NLL}_{bi} + b \sum_{b,j} \mathrm{KL}_{bj} + \text{const},

with factors :math:`a, b` that are monomials in B, D, k (:class:`~vaeloss.objective.algebra.Monomial`).
Relative to the per-sample negative ELBO
:math:`\frac1B\sum_b(\sum_i \mathrm{NLL} + \beta\sum_j \mathrm{KL})`:

* effective beta :math:`= b/a`;
* gradient scale :math:`= aB` (``L = aB * per-sample ELBO_beta + const``);
* the KL weight that reaches a target beta :math:`= \beta_t\, a / b_0`, with :math:`b_0`
  the KL factor at weight 1.

For squared-error losses ``NLL`` is the unit-variance Gaussian NLL, so a summed squared
error has :math:`a = 2`; the effective beta then equals the decoder variance the loss
implies at beta = 1 (Gaussian(sigma^2, beta) is Gaussian(1, beta * sigma^2) up to a constant).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from vaeloss.objective.algebra import Monomial, as_fraction
from vaeloss.validation import check_nonnegative, check_positive_int

if TYPE_CHECKING:  # the types only: this module does not need torch
    from vaeloss.objective.kl import LatentParameterisation
    from vaeloss.objective.likelihoods import DecoderOutput, Likelihood

__all__ = ["Convention", "Output"]

Output = Literal["scalar", "per_sample"]


@dataclass(frozen=True)
class Convention:
    """A loss convention: its likelihood and the factors on its NLL and KL sums.

    Attributes:
        name: short identifier.
        likelihood: reference likelihood of the reconstruction term.
        recon_factor: ``a``, the multiplier of the batch-and-data sum of reference NLL.
        kl_base: ``b_0``, the multiplier of the batch-and-latent sum of KL at KL weight 1.
        kl_weight: the convention's own multiplier on its KL term (``kld_weight``, ``c``...).
        output: "scalar", or "per_sample" when the function returns a [B] vector that the
            framework averages (the 1/B is already inside the factors).
        description: what the convention is, in words.
        source: where it is found in the wild.
        decoder_output: what the loss takes as reconstruction (probabilities, logits, mean).
        latent_parameterisation: what the loss takes as posterior scale.

    >>> from vaeloss.objective.presets import get_convention
    >>> c = get_convention("size_average")
    >>> c.effective_beta_formula, c.effective_beta(B=128, D=784, k=20)
    ('B*D', 100352.0)
    """

    name: str
    likelihood: Likelihood
    recon_factor: Monomial
    kl_base: Monomial
    kl_weight: Fraction = Fraction(1)
    output: Output = "scalar"
    description: str = ""
    source: str = ""
    decoder_output: DecoderOutput | None = None
    latent_parameterisation: LatentParameterisation = "logvar"

    @property
    def kl_factor(self) -> Monomial:
        """``b``: the multiplier of the KL sum, the convention's own weight included."""
        return self.kl_base.scale(self.kl_weight)

    @property
    def beta_monomial(self) -> Monomial:
        """Effective beta b/a as a monomial."""
        return self.kl_factor / self.recon_factor

    @property
    def effective_beta_formula(self) -> str:
        """Effective beta as a formula in B, D, k (``"B*D"``, ``"D/k"``, ``"1"``...)."""
        return self.beta_monomial.formula()

    @property
    def gradient_scale_monomial(self) -> Monomial:
        """Gradient scale relative to the per-sample ELBO, ``a * B``, as a monomial."""
        return self.recon_factor * Monomial(Fraction(1), B=1)

    @property
    def gradient_scale_formula(self) -> str:
        """Gradient scale relative to the per-sample ELBO, as a formula."""
        return self.gradient_scale_monomial.formula()

    def effective_beta(self, *, B: int, D: int, k: int) -> float:
        """The effective beta (relative to the per-sample negative ELBO) at these sizes."""
        _sizes(B, D, k)
        return self.beta_monomial.evaluate(B=B, D=D, k=k)

    def implied_decoder_variance(self, *, B: int, D: int, k: int) -> float | None:
        """For Gaussian losses, the decoder variance sigma^2 the loss implies at beta = 1."""
        if self.likelihood != "gaussian":
            return None
        return self.effective_beta(B=B, D=D, k=k)

    def gradient_scale(self, *, B: int, D: int, k: int) -> float:
        """``L = gradient_scale * per-sample ELBO_beta + const``: what a learning rate sees."""
        _sizes(B, D, k)
        return self.gradient_scale_monomial.evaluate(B=B, D=D, k=k)

    def kl_weight_for(self, target_beta: float, *, B: int, D: int, k: int) -> float:
        """The multiplier on this convention's own KL term that gives ``target_beta``.

        >>> from vaeloss.objective.presets import get_convention
        >>> get_convention("size_average").kl_weight_for(1.0, B=128, D=784, k=20)
        9.964923469387754e-06
        """
        check_nonnegative("target_beta", target_beta)
        _sizes(B, D, k)
        return float(target_beta) * self.kl_weight_for_elbo_monomial.evaluate(B=B, D=D, k=k)

    @property
    def kl_weight_for_elbo_monomial(self) -> Monomial:
        """The KL multiplier that makes this loss the true ELBO (beta = 1): ``a / b_0``."""
        return self.recon_factor / self.kl_base

    def kl_weight_formula_for_elbo(self) -> str:
        """The KL multiplier that makes this loss the true ELBO (beta = 1), as a formula."""
        return self.kl_weight_for_elbo_monomial.formula()

    def with_kl_weight(self, weight: float | Fraction) -> Convention:
        """The same convention with another multiplier on its KL term."""
        check_nonnegative("kl_weight", float(weight))
        return replace(self, kl_weight=as_fraction(weight))

    def elbo_beta_for(self, kl_weight: float, *, B: int, D: int, k: int) -> float:
        """The ELBO beta reached by putting ``kl_weight`` on this convention's KL term.

        >>> from vaeloss.objective.presets import get_convention
        >>> get_convention("size_average").elbo_beta_for(1e-4, B=128, D=784, k=20)
        10.0352
        """
        return self.with_kl_weight(kl_weight).effective_beta(B=B, D=D, k=k)


def _sizes(B: int, D: int, k: int) -> None:
    check_positive_int("B", B, example=128)
    check_positive_int("D", D, example=784)
    check_positive_int("k", k, example=20)
