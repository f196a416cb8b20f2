# ruff: noqa  (written in PyTorch-VAE's style on purpose: star imports, typing aliases)
from .base import *
from .vanilla_vae import *

vae_models = {"VanillaVAE": VanillaVAE}
