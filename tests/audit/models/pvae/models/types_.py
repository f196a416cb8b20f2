# ruff: noqa  (written in PyTorch-VAE's style on purpose: star imports, typing aliases)
from typing import Any, List, TypeVar

Tensor = TypeVar("torch.tensor")
