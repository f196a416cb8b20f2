"""Named conventions found in the wild, each with its loss written the way it is in the wild.

The ``loss`` functions are written independently of the algebra in
:mod:`vaeloss.objective.convention` (plain ``F.binary_cross_entropy``, ``F.mse_loss``...), so tests
can prove the algebra against them. All take ``(recon, x, mu, logvar)`` with ``recon``
decoder probabilities (Bernoulli) or means (Gaussian), shapes [B, D] and [B, k].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor

from vaeloss.errors import UnknownConventionError
from vaeloss.objective.algebra import Monomial
from vaeloss.objective.convention import Convention

__all__ = ["PRESETS", "Preset", "get_convention", "get_preset", "preset_names"]

LossFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def _kld_sum(mu: Tensor, logvar: Tensor) -> Tensor:
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def _pytorch_examples(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    return bce + _kld_sum(mu, logvar)


def _per_sample_mean(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    rec = F.binary_cross_entropy(recon, x, reduction="none").sum(dim=-1)
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
    return (rec + kld).mean(dim=0)


def _size_average(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    return F.binary_cross_entropy(recon, x, reduction="mean") + _kld_sum(mu, logvar)


def _keras_blog(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    xent = F.binary_cross_entropy(recon, x, reduction="none").mean(dim=-1)
    kl = -0.5 * torch.mean(1 + logvar - mu.square() - logvar.exp(), dim=-1)
    return xent + kl  # one value per sample; Keras averages over the batch


def _keras_docs(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    rec = x.shape[-1] * F.binary_cross_entropy(recon, x, reduction="none").mean(dim=-1)
    kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(dim=-1)
    return (rec + kl).mean()


def _kl_weight_c(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, c: float = 0.5) -> Tensor:
    rec = x.shape[-1] * F.binary_cross_entropy(recon, x, reduction="none").mean(dim=-1)
    kl = -0.5 * torch.sum(1 + logvar - mu.square() - logvar.exp(), dim=-1)
    return (rec + c * kl).mean()


def _pytorch_vae(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, kld_weight: float = 0.00025) -> Tensor:
    recons_loss = F.mse_loss(recon, x)
    kld_loss = torch.mean(-0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1), dim=0)
    return recons_loss + kld_weight * kld_loss


def _sse_sum(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    return ((x - recon) ** 2).sum() + _kld_sum(mu, logvar)


def _mse_mean_sum_kld(recon: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    return F.mse_loss(recon, x) + _kld_sum(mu, logvar)


@dataclass(frozen=True)
class Preset:
    """A named convention and its loss as written in the wild."""

    convention: Convention
    loss: LossFn
    snippet: str


def _m(coef: int | str | Fraction = 1, B: int = 0, D: int = 0, k: int = 0) -> Monomial:
    return Monomial(Fraction(coef), B, D, k)


_LIST = [
    Preset(
        Convention(
            "pytorch_examples",
            "bernoulli",
            _m(),
            _m(),
            description="BCE summed over pixels and batch + KLD summed over latents and batch",
            source="pytorch/examples vae/main.py",
        ),
        _pytorch_examples,
        "BCE(recon_x, x, reduction='sum') + KLD.sum()",
    ),
    Preset(
        Convention(
            "per_sample_mean",
            "bernoulli",
            _m(1, B=-1),
            _m(1, B=-1),
            description="per-sample sum over pixels and latents, mean over the batch",
            source="pythae, disentanglement_lib (Bernoulli)",
        ),
        _per_sample_mean,
        "(BCE.sum(-1) + KLD.sum(-1)).mean()",
    ),
    Preset(
        Convention(
            "size_average",
            "bernoulli",
            _m(1, B=-1, D=-1),
            _m(),
            description="BCE averaged over batch and pixels + KLD summed over batch and latents",
            source="size_average=True (old PyTorch), the 'same output for every input' loss",
        ),
        _size_average,
        "BCE(recon_x, x, size_average=True) + KLD.sum()",
    ),
    Preset(
        Convention(
            "keras_blog",
            "bernoulli",
            _m(1, B=-1, D=-1),
            _m(1, B=-1, k=-1),
            output="per_sample",
            description="per sample: BCE mean over pixels + KL mean over latents",
            source="Keras blog 'Building autoencoders in Keras'",
        ),
        _keras_blog,
        "binary_crossentropy(x, x_decoded_mean) + KL.mean(-1)",
    ),
    Preset(
        Convention(
            "keras_docs",
            "bernoulli",
            _m(1, B=-1),
            _m(1, B=-1),
            description="original_dim * mean BCE + KL summed over latents, mean over batch",
            source="Keras docs VAE example",
        ),
        _keras_docs,
        "(original_dim * BCE.mean(-1) + KL.sum(-1)).mean()",
    ),
    Preset(
        Convention(
            "kl_weight_c",
            "bernoulli",
            _m(1, B=-1),
            _m(1, B=-1),
            kl_weight=Fraction(1, 2),
            description="Keras docs loss with a KL coefficient c (default 0.5)",
            source="KL-coefficient experiments (reconstruction + c * kl)",
        ),
        _kl_weight_c,
        "(original_dim * BCE.mean(-1) + c * KL.sum(-1)).mean()",
    ),
    Preset(
        Convention(
            "pytorch_vae",
            "gaussian",
            _m(2, B=-1, D=-1),
            _m(1, B=-1),
            kl_weight=Fraction(1, 4000),
            description="MSE averaged over everything + kld_weight * KL (sum latents, mean batch)",
            source="PyTorch-VAE (AntixK), kld_weight default 0.00025",
        ),
        _pytorch_vae,
        "F.mse_loss(recons, input) + kld_weight * KLD.sum(1).mean(0)",
    ),
    Preset(
        Convention(
            "sse_sum",
            "gaussian",
            _m(2),
            _m(),
            description="squared error summed over everything + KL summed over everything",
            source="tutorials preferring summed squared error to BCE",
        ),
        _sse_sum,
        "((x - x_hat) ** 2).sum() + KLD.sum()",
    ),
    Preset(
        Convention(
            "mse_mean_sum_kld",
            "gaussian",
            _m(2, B=-1, D=-1),
            _m(),
            description="MSE averaged over batch and pixels + KL summed over everything",
            source="F.mse_loss(recon, x) + KLD, a common mix-up",
        ),
        _mse_mean_sum_kld,
        "F.mse_loss(recon_x, x) + KLD.sum()",
    ),
]

PRESETS: dict[str, Preset] = {p.convention.name: p for p in _LIST}
_ALIASES = {"elbo_sum": "pytorch_examples", "pythae": "per_sample_mean", "elbo": "per_sample_mean"}


def preset_names() -> list[str]:
    """Names of every preset, in a stable order."""
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """The preset of this name (aliases ``elbo``, ``elbo_sum``, ``pythae`` accepted)."""
    key = _ALIASES.get(name, name)
    if key not in PRESETS:
        raise UnknownConventionError(
            f"Expected a convention name but got convention={name!r}. Try one of: {', '.join(PRESETS)}."
        )
    return PRESETS[key]


def get_convention(name: str) -> Convention:
    """The :class:`Convention` of a preset name.

    >>> get_convention("keras_blog").effective_beta_formula
    'D/k'
    """
    return get_preset(name).convention
