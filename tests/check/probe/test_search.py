"""The ways of calling a loss the search tries: here, image-shaped data beside a flat
reconstruction (a decoder of Linear layers, the batch as the loader gives it)."""

from __future__ import annotations

import pytest

from vaeloss.check import check_loss
from vaeloss.check.report import format_report

FLATTENS_ITS_DATA = """
import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar, beta=5.0):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, x.shape[2] * x.shape[3]), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + beta * kld
"""


def test_a_loss_that_flattens_its_image_data_takes_a_flat_reconstruction(tmp_path):
    """x.view(-1, H*W) of [B, 1, H, W] data beside recon_x [B, H*W]: summed BCE + 5 * summed KL,
    beta = 5 at every size (the flat layout fails on x.shape[2]; the image layout with an image
    reconstruction on the BCE's shapes)."""
    path = tmp_path / "loss.py"
    path.write_text(FLATTENS_ITS_DATA)
    report = check_loss(str(path), isolate=False)
    assert report.probe.recon_flat and report.input_shape == [1, 28, 28]
    assert report.effective_beta == pytest.approx(5.0, rel=1e-9)
    assert report.beta is not None and report.beta.formula() == "5"
    assert "inputs [B, 1x28x28] (the reconstruction flat, [B, D])" in format_report(report)
