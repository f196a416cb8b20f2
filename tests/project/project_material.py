"""The text of the fixture project's files that are written here rather than copied."""

PYPROJECT = """\
[project]
name = "my-vae-experiments"

[tool.vaeloss]
timeout = 10
ignore = ["bce-on-continuous-data"]

[tool.vaeloss.targets."experiments/weighted.py"]
args = { c = 2.0 }
expect-beta = 2.0
"""

EXPERIMENT_LOSS = """\
import torch.nn.functional as F

from utils import kl_weight, kld


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    return bce + kl_weight * kld(mu, logvar)
"""

EXPERIMENT_UTILS = """\
import torch

kl_weight = {weight}


def kld(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
"""

SLOW_SETUP = """\
import time

time.sleep(600)  # a module that hangs when imported
"""

CLI_CONFIG = """\
raise SystemExit("run this with --config")  # a module that exits when imported
"""

HANGS = """\
import torch
import torch.nn.functional as F

import slow_setup


def loss_function(recon_x, x, mu, logvar):
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return F.binary_cross_entropy(recon_x, x, reduction="sum") + kld
"""

EXITS = """\
import torch
import torch.nn.functional as F

import cli_config


def loss_function(recon_x, x, mu, logvar):
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return F.binary_cross_entropy(recon_x, x, reduction="sum") + kld
"""

NEEDS_GPU = """\
import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar):
    if not recon_x.is_cuda:
        raise RuntimeError("this loss runs on the GPU only")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return F.binary_cross_entropy(recon_x, x, reduction="sum") + kld
"""
