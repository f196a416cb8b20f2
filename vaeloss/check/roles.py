"""The names a VAE loss gives its tensors, by role (pure: no framework imported).

A role is what a tensor is to the loss: the reconstruction (``recon``), the data (``data``),
the posterior's mean (``mu``) and scale (``scale``: a log-variance, a standard deviation...),
a sample of the latents (``z``). :func:`role_of` reads a role from a name.

>>> role_of("x_decoded_mean"), role_of("z_log_var"), role_of("optimizer")
('recon', 'scale', None)
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["FREE_ROLES", "Role", "role_of", "score"]

Role = Literal["recon", "data", "mu", "scale", "z"]
FREE_ROLES: tuple[Role, ...] = ("mu", "scale")
"""The roles a name read from outside the loss's parameters may take."""

RECON_NAMES = (
    "recon_x", "recon", "x_recon", "x_hat", "xhat", "x_rec", "recons", "reconstruction", "outputs",
    "output", "x_decoded_mean", "x_decoded", "decoded", "x_tilde", "pred", "y_pred", "preds", "logits",
    "x_logits", "x_logit", "recon_logits", "probs", "x_mean", "x_prob", "x_probs", "recon_batch", "out",
    "x_out", "reconstructed", "generated", "x_pred", "rec", "x_reconst", "x_reconstructed", "decoder_output",
)  # fmt: skip
DATA_NAMES = (
    "x", "inputs", "input", "target", "targets", "data", "images", "image", "x_true", "y_true", "orig",
    "original", "batch", "y", "x_in", "img", "imgs", "real", "x_input", "obs", "x_orig", "ground_truth",
    "batch_data", "x_batch", "batch_x", "data_batch", "inputs_batch", "input_batch",
)  # fmt: skip
MU_NAMES = (
    "mu", "mean", "z_mean", "mu_z", "z_mu", "means", "mus", "loc", "q_mu", "posterior_mean", "m", "mu_q",
    "latent_mean", "z_loc", "mu_e", "qz_mean",
)  # fmt: skip
SCALE_NAMES = (
    "logvar", "log_var", "z_log_var", "z_logvar", "lv", "log_sigma2", "logvar_z", "z_log_sigma",
    "log_sigma", "logsigma", "log_std", "logstd", "z_log_std", "std", "sigma", "z_std", "scale", "var",
    "variance", "z_var", "sd", "s", "log_variance", "logv", "log_var_z", "z_scale",
)  # fmt: skip
SAMPLE_NAMES = ("z", "z_sample", "sample", "z_sampled", "latent", "z_samples", "samples")
POSTERIOR_NAMES = ("q", "qz", "q_z", "q_z_x", "qzx", "posterior", "q_dist", "z_dist", "latent_dist", "q_zx")
PRIOR_NAMES = ("p", "pz", "p_z", "prior", "prior_dist")
DECODER_NAMES = (
    "px", "p_x", "p_x_z", "px_z", "pxz", "likelihood", "recon_dist", "x_dist", "decoder_dist", "p_xz",
)  # fmt: skip


def score(name: str, names: tuple[str, ...]) -> int:
    """How strongly ``name`` is one of ``names`` (0: not at all; earlier entries score higher)."""
    low = name.lower()
    if low in names:
        return 100 - names.index(low)
    return 0


_ROLE_NAMES: tuple[tuple[Role, tuple[str, ...]], ...] = (
    ("recon", RECON_NAMES),
    ("data", DATA_NAMES),
    ("mu", MU_NAMES),
    ("scale", SCALE_NAMES),
    ("z", SAMPLE_NAMES),
)


_SCALE_WORDS = frozenset(
    "var variance logvar lv sigma sigmas std stddev sd logstd logsigma scale sigma2 sigmasq".split()
)
_MU_WORDS = frozenset("mu mus mean means loc".split())
_RECON_WORDS = frozenset(
    "recon recons reconstruction reconstructed reconst rec hat decoded pred preds logits out output outputs "
    "xhat generated".split()
)
_DATA_WORDS = frozenset(
    "x data input inputs target targets image images img imgs batch obs orig original real".split()
)
_SAMPLE_WORDS = frozenset("z sample samples sampled latent latents eps code codes".split())
_NO_TENSOR_WORDS = frozenset(
    "loss losses idx index size dim dims num count weight loader shape len lr step epoch term kl kld bce mse "
    "nll elbo fn func layer net model optimizer fc label labels class classes".split()
)
_OBSERVED = frozenset("x data input inputs obs recon out output decoder dec px".split())


def _words(name: str) -> list[str]:
    """``zLogVar`` -> ["z", "log", "var"]; ``sigma_sq`` -> ["sigma", "sq"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[_\W\d]+", spaced.lower()) if w]


def _role_by_words(name: str) -> Role | None:
    """The role of a name made of role words (``z_sigma``, ``enc_logvar``, ``x_reconstructed``):
    a scale's or a mean's word names the posterior's, unless the data's or the decoder's word
    says it is the decoder's (``x_mean``, ``recon_mu``)."""
    words = _words(name)
    joined = {"".join(words[i : i + 2]) for i in range(len(words) - 1)}  # log_var -> logvar
    found = set(words) | joined
    if found & _NO_TENSOR_WORDS:  # recon_loss, batch_idx, latent_dim: not a tensor of the roles
        return None
    observed = bool(found & _OBSERVED) or bool(found & _RECON_WORDS)
    if found & _SCALE_WORDS and not observed:
        return "scale"
    if found & _MU_WORDS:
        return "recon" if observed else "mu"
    if found & _RECON_WORDS:
        return "recon"
    if found & _DATA_WORDS:
        return "data"
    if found & _SAMPLE_WORDS:
        return "z"
    return None


def role_of(name: str) -> Role | None:
    """The role a name suggests (None: no role's name): one of the names people use for it, else
    a name made of its words (``z_sigma``, ``qz_logvar``, ``x_reconstructed``).

    >>> role_of("z_sigma"), role_of("enc_logvar"), role_of("sigma_sq"), role_of("x_reconstructed")
    ('scale', 'scale', 'scale', 'recon')
    """
    best, role = max((score(name, names), role) for role, names in _ROLE_NAMES)
    return role if best else _role_by_words(name)
