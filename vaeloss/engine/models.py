"""Small VAEs for audits. Every model here is *batched*: it holds S independent models
(one per beta of a sweep) and maps data [N, D] to outputs [S, N, ...].

* :class:`BatchedMLPVAE` and :class:`BatchedLinearVAE` stack their weights as [S, in, out]
  and run S models in one batched matmul.
* :class:`ModuleStack` wraps S ordinary ``nn.Module`` VAEs (the conv VAE, a user's class) and
  runs them one after the other.

Decoder outputs are logits (Bernoulli kinds) or means (Gaussian); the trainer knows which.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vaeloss.errors import InvalidArgumentError

__all__ = [
    "BatchedLinearVAE",
    "BatchedMLPVAE",
    "BatchedVAE",
    "ConvVAE",
    "ModuleStack",
    "build_model",
    "load_user_model",
]


class BatchedVAE(nn.Module):
    """Interface: ``encode(x [N, D]) -> (mu, logvar) [S, N, k]``, ``decode(z [S, N, k]) -> [S, N, D]``."""

    n_models: int
    latent_dim: int
    data_dim: int

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError


def _linear_init(
    fan_in: int, fan_out: int, S: int, gens: list[torch.Generator]
) -> tuple[nn.Parameter, nn.Parameter]:
    bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default (kaiming_uniform with a=sqrt(5))
    w = torch.stack([(torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound for g in gens])
    b = torch.stack([(torch.rand(1, fan_out, generator=g) * 2 - 1) * bound for g in gens])
    assert w.shape == (S, fan_in, fan_out)
    return nn.Parameter(w), nn.Parameter(b)


def _apply(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``x @ w + b`` for S stacked models; x is [N, in] (shared) or [S, N, in].

    With S = 1 it is a plain addmm on views (``view``, not ``w[0]``: indexing would make the
    backward pass zero-fill a full-size gradient buffer every step).
    """
    S, fan_in, fan_out = w.shape
    if S == 1:
        rows = x.reshape(-1, fan_in)
        return torch.addmm(b.view(fan_out), rows, w.view(fan_in, fan_out)).view(1, -1, fan_out)
    if x.dim() == 2:  # shared input [N, in] for all S models
        return torch.matmul(x, w) + b
    return torch.baddbmm(b, x, w)


def _seeds(n_models: int, seeds: Sequence[int] | None) -> list[int]:
    if seeds is None:
        return [0] * n_models
    if len(seeds) != n_models:
        raise InvalidArgumentError(f"Expected {n_models} seeds but got seeds={list(seeds)}.")
    return list(seeds)


class BatchedMLPVAE(BatchedVAE):
    """S MLP VAEs with ReLU hidden layers; ``hidden=(400,), latent_dim=20`` on D=784 is the
    pytorch/examples model.

    >>> m = BatchedMLPVAE(64, (32,), 4, n_models=3)
    >>> [t.shape for t in m.encode(torch.rand(5, 64))]
    [torch.Size([3, 5, 4]), torch.Size([3, 5, 4])]
    """

    def __init__(
        self,
        data_dim: int,
        hidden: Sequence[int],
        latent_dim: int,
        *,
        n_models: int = 1,
        seeds: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.n_models, self.latent_dim, self.data_dim = n_models, latent_dim, data_dim
        self.hidden = tuple(hidden)
        gens = [torch.Generator().manual_seed(s) for s in _seeds(n_models, seeds)]
        enc = [data_dim, *hidden]
        dec = [latent_dim, *reversed(hidden), data_dim]
        self.enc_w, self.enc_b = nn.ParameterList(), nn.ParameterList()
        for i, o in zip(enc[:-1], enc[1:]):
            w, b = _linear_init(i, o, n_models, gens)
            self.enc_w.append(w)
            self.enc_b.append(b)
        self.head_w, self.head_b = _linear_init(enc[-1], 2 * latent_dim, n_models, gens)
        self.dec_w, self.dec_b = nn.ParameterList(), nn.ParameterList()
        for i, o in zip(dec[:-1], dec[1:]):
            w, b = _linear_init(i, o, n_models, gens)
            self.dec_w.append(w)
            self.dec_b.append(b)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = x
        for w, b in zip(self.enc_w, self.enc_b):
            h = torch.relu(_apply(h, w, b))
        out = _apply(h, self.head_w, self.head_b)
        if out.dim() == 2:
            out = out.unsqueeze(0)
        mu, logvar = out.chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        h = z
        last = len(self.dec_w) - 1
        for i, (w, b) in enumerate(zip(self.dec_w, self.dec_b)):
            h = _apply(h, w, b)
            if i < last:
                h = torch.relu(h)
        return h


class BatchedLinearVAE(BatchedVAE):
    """S linear VAEs (Lucas et al. 2019): ``mu = x V + c``, data-independent posterior
    variance, ``x_hat = z W + b``. With a Gaussian decoder its expected squared error is exact
    (:meth:`expected_sq_error`), so training needs no sampling.
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        *,
        n_models: int = 1,
        seeds: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.n_models, self.latent_dim, self.data_dim = n_models, latent_dim, data_dim
        gens = [torch.Generator().manual_seed(s) for s in _seeds(n_models, seeds)]
        self.enc_w, self.enc_b = _linear_init(data_dim, latent_dim, n_models, gens)
        self.log_var = nn.Parameter(torch.full((n_models, 1, latent_dim), -1.0))
        self.dec_w, self.dec_b = _linear_init(latent_dim, data_dim, n_models, gens)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu = _apply(x, self.enc_w, self.enc_b)
        return mu, self.log_var.expand_as(mu)

    def decode(self, z: Tensor) -> Tensor:
        return _apply(z, self.dec_w, self.dec_b)

    def expected_sq_error(self, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """E_q ||x - W z - b||^2 per sample, [S, N]: ``||x - W mu - b||^2 + sum_j var_j ||W_j||^2``."""
        resid = (x - self.decode(mu)).square().sum(-1)
        w_norm = self.dec_w.square().sum(-1)  # [S, k]: squared norm of each latent's column
        return resid + (logvar.exp() * w_norm.unsqueeze(1)).sum(-1)


class ConvVAE(nn.Module):
    """A small conv VAE for C x H x W images with H, W divisible by 4 (e.g. 1 x 28 x 28):
    conv(32, stride 2) -> conv(64, stride 2) -> linear heads; transposed convs back."""

    def __init__(self, shape: Sequence[int], latent_dim: int, hidden: int = 256) -> None:
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4:
            raise InvalidArgumentError(
                f"Expected image sides divisible by 4 for the conv VAE but got shape={tuple(shape)}. "
                f"Try --model mlp."
            )
        self.shape = (c, h, w)
        flat = 64 * (h // 4) * (w // 4)
        self.enc = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, 2 * latent_dim)
        self.dec = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, flat),
            nn.ReLU(),
            nn.Unflatten(1, (64, h // 4, w // 4)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, 2, 1),
            nn.Flatten(),
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.head(self.enc(x.reshape(-1, *self.shape))).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        return self.dec(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(mu), mu, logvar


def _call(module: nn.Module, method: str, arg: Tensor) -> Any:
    return getattr(module, method)(arg)


class ModuleStack(BatchedVAE):
    """S ordinary VAE modules (with ``encode``/``decode``) run one after the other."""

    def __init__(
        self,
        factory: Callable[[], nn.Module],
        *,
        n_models: int = 1,
        seeds: Sequence[int] | None = None,
        data_dim: int,
        latent_dim: int,
    ) -> None:
        super().__init__()
        mods = []
        for s in _seeds(n_models, seeds):
            torch.manual_seed(s)
            mods.append(factory())
        self.models = nn.ModuleList(mods)
        self.n_models, self.data_dim, self.latent_dim = n_models, data_dim, latent_dim

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        outs = [_call(m, "encode", x if x.dim() == 2 else x[i]) for i, m in enumerate(self.models)]
        return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])

    def decode(self, z: Tensor) -> Tensor:
        lead = z.shape[1:-1]
        outs = [_call(m, "decode", z[i].reshape(-1, z.shape[-1])) for i, m in enumerate(self.models)]
        return torch.stack([o.reshape(*lead, -1) for o in outs])


def load_user_model(spec: str) -> type[nn.Module]:
    """The class named by ``FILE:Class``; it must define ``encode`` and ``decode``."""
    path_text, _, name = spec.rpartition(":")
    path = Path(path_text)
    if not path_text or not path.exists():
        raise InvalidArgumentError(
            f"Expected --model mlp|conv|linear|FILE:Class but got model={spec!r}. Try --model my_vae.py:VAE."
        )
    module_spec = importlib.util.spec_from_file_location("vaeloss_user_model", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001
        raise InvalidArgumentError(
            f"Expected {path} to import but it raised {type(exc).__name__}: {exc}."
        ) from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise InvalidArgumentError(f"Expected an nn.Module class named {name!r} in {path}.")
    for method in ("encode", "decode"):
        if not callable(getattr(cls, method, None)):
            raise InvalidArgumentError(
                f"Expected {name} to define {method}(): encode(x) -> (mu, logvar) and "
                f"decode(z) -> reconstruction, so collapse metrics can be measured."
            )
    return cls


def build_model(
    kind: str,
    *,
    data_dim: int,
    shape: Sequence[int],
    hidden: Sequence[int],
    latent_dim: int,
    n_models: int,
    seeds: Sequence[int] | None = None,
) -> BatchedVAE:
    """Build S models of a kind: "mlp" | "linear" | "conv" | "FILE:Class"."""
    if kind == "mlp":
        return BatchedMLPVAE(data_dim, hidden, latent_dim, n_models=n_models, seeds=seeds)
    if kind == "linear":
        return BatchedLinearVAE(data_dim, latent_dim, n_models=n_models, seeds=seeds)
    if kind == "conv":
        if len(shape) != 3:
            raise InvalidArgumentError(
                f"Expected image data (C, H, W) for --model conv but got shape={tuple(shape)}. "
                f"Try --model mlp."
            )
        return ModuleStack(
            lambda: ConvVAE(shape, latent_dim),
            n_models=n_models,
            seeds=seeds,
            data_dim=data_dim,
            latent_dim=latent_dim,
        )
    cls = load_user_model(kind)
    return ModuleStack(cls, n_models=n_models, seeds=seeds, data_dim=data_dim, latent_dim=latent_dim)
