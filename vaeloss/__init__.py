"""vaeloss: what your VAE loss really optimises, and whether your VAE has collapsed."""

from vaeloss._version import __version__
from vaeloss.algebra import Monomial
from vaeloss.conventions import Convention
from vaeloss.convert import (
    bits_per_dim,
    bits_to_nats,
    convert_kl_weight,
    gaussian_nll_to_mse,
    mse_to_gaussian_nll,
    nats_to_bits,
    per_batch_to_per_sample,
    per_sample_to_per_dim,
)
from vaeloss.elbo import ElboTerms, element_nll, negative_elbo, reduce_terms
from vaeloss.errors import (
    DataError,
    DeviceError,
    InvalidArgumentError,
    LossCheckError,
    ShapeMismatchError,
    UnknownConventionError,
    VaelossError,
)
from vaeloss.kl import kl_monte_carlo, kl_normal, to_logvar
from vaeloss.likelihoods import (
    bernoulli_nll,
    bernoulli_nll_logits,
    continuous_bernoulli_nll,
    continuous_bernoulli_nll_logits,
    gaussian_nll,
    optimal_sigma,
)
from vaeloss.presets import PRESETS, get_convention, get_preset, preset_names

__all__ = [
    "PRESETS",
    "Convention",
    "DataError",
    "DeviceError",
    "ElboTerms",
    "InvalidArgumentError",
    "LossCheckError",
    "Monomial",
    "ShapeMismatchError",
    "UnknownConventionError",
    "VaelossError",
    "__version__",
    "bernoulli_nll",
    "bernoulli_nll_logits",
    "bits_per_dim",
    "bits_to_nats",
    "continuous_bernoulli_nll",
    "continuous_bernoulli_nll_logits",
    "convert_kl_weight",
    "element_nll",
    "gaussian_nll",
    "gaussian_nll_to_mse",
    "get_convention",
    "get_preset",
    "kl_monte_carlo",
    "kl_normal",
    "mse_to_gaussian_nll",
    "nats_to_bits",
    "negative_elbo",
    "optimal_sigma",
    "per_batch_to_per_sample",
    "per_sample_to_per_dim",
    "preset_names",
    "reduce_terms",
    "to_logvar",
]
