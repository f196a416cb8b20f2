"""Default audit settings per data set (sized to finish in under a minute on 2 CPU cores)."""

from __future__ import annotations

from typing import Any

DIGITS_DEFAULTS: dict[str, Any] = {
    "hidden": (128,),
    "latent_dim": 8,
    "epochs": 40,
    "batch_size": 64,
    "lr": 2e-3,
}
MNIST_DEFAULTS: dict[str, Any] = {
    "hidden": (400,),
    "latent_dim": 20,
    "epochs": 5,
    "batch_size": 128,
    "lr": 1e-3,
}
LINEAR_DEFAULTS: dict[str, Any] = {
    "hidden": (),
    "latent_dim": 6,
    "epochs": 600,
    "batch_size": 1600,  # the whole training split of 2000 rows (full batch)
    "lr": 0.05,
}


def defaults_for(data: str) -> dict[str, Any]:
    """The defaults for a data spec."""
    if data == "digits" or data.startswith(("npz:", "npy:")):
        return dict(DIGITS_DEFAULTS)
    if data == "linear-gaussian":
        return dict(LINEAR_DEFAULTS)
    return dict(MNIST_DEFAULTS)
