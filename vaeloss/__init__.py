"""vaeloss: what your VAE loss really optimises, and whether your VAE has collapsed.

The public API is loaded on first use, so that ``import vaeloss`` (and the CLI's
start-up) does not import torch before it is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vaeloss._version import __version__

if TYPE_CHECKING:
    from vaeloss.errors import (
        DataError,
        DeviceError,
        InvalidArgumentError,
        LossCheckError,
        ShapeMismatchError,
        UnknownConventionError,
        VaelossError,
    )
    from vaeloss.objective.algebra import (
        Monomial,
    )
    from vaeloss.objective.convention import (
        Convention,
    )
    from vaeloss.objective.convert import (
        bits_per_dim,
        bits_to_nats,
        convert_kl_weight,
        gaussian_nll_to_mse,
        mse_to_gaussian_nll,
        nats_to_bits,
        per_batch_to_per_sample,
        per_sample_to_per_dim,
    )
    from vaeloss.objective.elbo import (
        ElboTerms,
        negative_elbo,
        reduce_terms,
    )
    from vaeloss.objective.kl import (
        kl_monte_carlo,
        kl_normal,
        to_logvar,
    )
    from vaeloss.objective.likelihoods import (
        bernoulli_nll,
        bernoulli_nll_logits,
        continuous_bernoulli_nll,
        continuous_bernoulli_nll_logits,
        element_nll,
        gaussian_nll,
        optimal_sigma,
    )
    from vaeloss.objective.presets import (
        PRESETS,
        get_convention,
        get_preset,
        preset_names,
    )

_LAZY: dict[str, str] = {
    "Monomial": "vaeloss.objective.algebra",
    "Convention": "vaeloss.objective.convention",
    "bits_per_dim": "vaeloss.objective.convert",
    "bits_to_nats": "vaeloss.objective.convert",
    "convert_kl_weight": "vaeloss.objective.convert",
    "gaussian_nll_to_mse": "vaeloss.objective.convert",
    "mse_to_gaussian_nll": "vaeloss.objective.convert",
    "nats_to_bits": "vaeloss.objective.convert",
    "per_batch_to_per_sample": "vaeloss.objective.convert",
    "per_sample_to_per_dim": "vaeloss.objective.convert",
    "ElboTerms": "vaeloss.objective.elbo",
    "element_nll": "vaeloss.objective.likelihoods",
    "negative_elbo": "vaeloss.objective.elbo",
    "reduce_terms": "vaeloss.objective.elbo",
    "DataError": "vaeloss.errors",
    "DeviceError": "vaeloss.errors",
    "InvalidArgumentError": "vaeloss.errors",
    "LossCheckError": "vaeloss.errors",
    "ShapeMismatchError": "vaeloss.errors",
    "UnknownConventionError": "vaeloss.errors",
    "VaelossError": "vaeloss.errors",
    "kl_monte_carlo": "vaeloss.objective.kl",
    "kl_normal": "vaeloss.objective.kl",
    "to_logvar": "vaeloss.objective.kl",
    "bernoulli_nll": "vaeloss.objective.likelihoods",
    "bernoulli_nll_logits": "vaeloss.objective.likelihoods",
    "continuous_bernoulli_nll": "vaeloss.objective.likelihoods",
    "continuous_bernoulli_nll_logits": "vaeloss.objective.likelihoods",
    "gaussian_nll": "vaeloss.objective.likelihoods",
    "optimal_sigma": "vaeloss.objective.likelihoods",
    "PRESETS": "vaeloss.objective.presets",
    "get_convention": "vaeloss.objective.presets",
    "get_preset": "vaeloss.objective.presets",
    "preset_names": "vaeloss.objective.presets",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vaeloss' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
