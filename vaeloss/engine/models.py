"""Small VAEs for audits. Every model here is *batched*: it holds S independent models
(one per beta of a sweep) and maps data [N, D] to outputs [S, N, ...].

* :class:`BatchedMLPVAE` and :class:`BatchedLinearVAE` stack their weights as [S, in, out]
  and run S models in one batched matmul.
* :class:`ConvVAE` is an ordinary module; :mod:`vaeloss.engine.stacks` batches S copies of it
  (or of a user's class).

Decoder outputs are logits (Bernoulli kinds) or means (Gaussian); the trainer knows which.
The built-in models see standardised data and emit outputs on the data's scale
(:class:`DataScaling`), so one learning rate suits data of any scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vaeloss.errors import InvalidArgumentError

__all__ = ["BatchedLinearVAE", "BatchedMLPVAE", "BatchedVAE", "ConvVAE", "DataScaling", "model_seeds"]


class BatchedVAE(nn.Module):
    """Interface: ``encode(x [N, D]) -> (mu, logvar) [S, N, k]``, ``decode(z [S, N, k]) -> [S, N, D]``."""

    n_models: int
    latent_dim: int
    data_dim: int

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def encode_one(self, s: int, x: Tensor) -> tuple[Tensor, Tensor]:
        """Model s's posterior of ``x`` [N, D]: (mu, logvar) [N, k] each."""
        mu, logvar = self.encode(x)
        return mu[s], logvar[s]

    def decode_one(self, s: int, z: Tensor) -> Tensor:
        """Model s's decoder output for ``z`` [N, k]: [N, D] (the models built on a module
        run model s alone; the stacked ones run all S, which costs them little)."""
        zz = z.reshape(1, -1, z.shape[-1]).expand(self.n_models, -1, -1).contiguous()
        return self.decode(zz)[s]

    def model_tensors(self) -> list[tuple[Tensor, int | None]]:
        """The parameters and per-model buffers: ``(tensor, None)`` for a tensor stacked over
        the S models on its first dim, ``(tensor, s)`` for a tensor of model s alone."""
        return [(p, None) for p in self.parameters()]

    def parameter_models(self) -> list[tuple[nn.Parameter, int | None]]:
        """The parameters, as :meth:`model_tensors` pairs (for :class:`~vaeloss.engine.optim.BatchedAdam`)."""
        return [(t, m) for t, m in self.model_tensors() if isinstance(t, nn.Parameter)]

    def state_of(self, s: int) -> list[Tensor]:
        """A copy of model s's parameters and buffers (to restore it with :meth:`load_state_of`)."""
        return [t.detach()[s].clone() if m is None else t.detach().clone() for t, m in self._tensors_of(s)]

    @torch.no_grad()
    def load_state_of(self, s: int, saved: list[Tensor]) -> None:
        """Set model s's parameters and buffers to ``saved`` (from :meth:`state_of`)."""
        for (t, m), v in zip(self._tensors_of(s), saved):
            (t[s] if m is None else t).copy_(v)

    def _tensors_of(self, s: int) -> list[tuple[Tensor, int | None]]:
        return [(t, m) for t, m in self.model_tensors() if m is None or m == s]


@dataclass(frozen=True)
class DataScaling:
    r"""Fixed affine maps around a built-in model: its first layer sees
    :math:`(x - \text{shift}) / \text{scale}` and its last layer's output :math:`o` becomes
    :math:`\text{out\_shift} + \text{out\_scale}\, o`.

    An affine reparameterisation of the same model family (the first and last linear layers
    absorb it), so the objective and its optimum are unchanged; the optimiser's steps become
    relative to the data's scale, and the decoder starts at the data's mean.

    Attributes:
        shift: the per-feature data mean [D]; scale: the data's overall standard deviation.
        out_shift: [D], the mean in the decoder's output units (logits of the mean for logits);
        out_scale: 1 for logits, else the data's standard deviation.
    """

    shift: Tensor
    scale: float
    out_shift: Tensor
    out_scale: float

    @classmethod
    def identity(cls, data_dim: int) -> DataScaling:
        zero = torch.zeros(data_dim)
        return cls(zero, 1.0, zero, 1.0)

    @classmethod
    def from_data(cls, x: Tensor, *, logits: bool, multinomial: bool = False) -> DataScaling:
        """The scaling for data ``x`` [N, D] and a decoder emitting logits or means.

        >>> s = DataScaling.from_data(torch.tensor([[1.0, 3.0], [3.0, 5.0]]), logits=False)
        >>> s.shift.tolist(), s.scale, s.out_scale
        ([2.0, 4.0], 1.0, 1.0)
        """
        x = x.double()
        mean = x.mean(0)
        std = float((x - mean).square().mean().sqrt())
        std = std if std > 0 else 1.0
        if not logits:
            return cls(mean.float(), std, mean.float(), std)
        m = mean.clamp(1e-3, 1 - 1e-3)
        out = torch.log(m) if multinomial else torch.log(m) - torch.log1p(-m)
        return cls(mean.float(), std, out.float(), 1.0)


class _Scaled(BatchedVAE):
    """A batched model with :class:`DataScaling` buffers (shared by its S models)."""

    in_shift: Tensor
    out_shift: Tensor

    def _set_scaling(self, scaling: DataScaling | None) -> None:
        sc = scaling or DataScaling.identity(self.data_dim)
        self.register_buffer("in_shift", sc.shift.clone())
        self.register_buffer("out_shift", sc.out_shift.clone())
        self.in_scale, self.out_scale = float(sc.scale), float(sc.out_scale)

    def _scale_in(self, x: Tensor) -> Tensor:
        return (x - self.in_shift) / self.in_scale

    def _scale_out(self, o: Tensor) -> Tensor:
        return self.out_shift + self.out_scale * o


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


def model_seeds(n_models: int, seeds: Sequence[int] | None) -> list[int]:
    """The seed of each of S models (0 for all when not given)."""
    if seeds is None:
        return [0] * n_models
    if len(seeds) != n_models:
        raise InvalidArgumentError(f"Expected {n_models} seeds but got seeds={list(seeds)}.")
    return list(seeds)


class BatchedMLPVAE(_Scaled):
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
        scaling: DataScaling | None = None,
    ) -> None:
        super().__init__()
        self.n_models, self.latent_dim, self.data_dim = n_models, latent_dim, data_dim
        self._set_scaling(scaling)
        self.hidden = tuple(hidden)
        gens = [torch.Generator().manual_seed(s) for s in model_seeds(n_models, seeds)]
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
        h = self._scale_in(x)
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
        return self._scale_out(h)


class BatchedLinearVAE(_Scaled):
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
        scaling: DataScaling | None = None,
    ) -> None:
        super().__init__()
        self.n_models, self.latent_dim, self.data_dim = n_models, latent_dim, data_dim
        self._set_scaling(scaling)
        gens = [torch.Generator().manual_seed(s) for s in model_seeds(n_models, seeds)]
        self.enc_w, self.enc_b = _linear_init(data_dim, latent_dim, n_models, gens)
        self.log_var = nn.Parameter(torch.full((n_models, 1, latent_dim), -1.0))
        self.dec_w, self.dec_b = _linear_init(latent_dim, data_dim, n_models, gens)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu = _apply(self._scale_in(x), self.enc_w, self.enc_b)
        return mu, self.log_var.expand_as(mu)

    def decode(self, z: Tensor) -> Tensor:
        return self._scale_out(_apply(z, self.dec_w, self.dec_b))

    def expected_sq_error(self, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """E_q ||x - W z - b||^2 per sample, [S, N]: ``||x - W mu - b||^2 + sum_j var_j ||W_j||^2``."""
        resid = (x - self.decode(mu)).square().sum(-1)
        # [S, k]: squared norm of each latent's column of the effective weight out_scale * W
        w_norm = self.dec_w.square().sum(-1) * self.out_scale**2
        return resid + (logvar.exp() * w_norm.unsqueeze(1)).sum(-1)


class ConvVAE(nn.Module):
    """A small conv VAE for C x H x W images with H, W divisible by 4 (e.g. 1 x 28 x 28):
    conv(16, stride 2) -> conv(32, stride 2) -> linear heads; transposed convs back; the data
    scaled as :class:`DataScaling` says."""

    in_shift: Tensor
    out_shift: Tensor

    def __init__(
        self, shape: Sequence[int], latent_dim: int, hidden: int = 256, *, scaling: DataScaling | None = None
    ) -> None:
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4:
            raise InvalidArgumentError(
                f"Expected image sides divisible by 4 for the conv VAE but got shape={tuple(shape)}. "
                f"Try --model mlp."
            )
        self.shape = (c, h, w)
        sc = scaling or DataScaling.identity(c * h * w)
        self.register_buffer("in_shift", sc.shift.reshape(c, h, w).clone())
        self.register_buffer("out_shift", sc.out_shift.clone())
        self.in_scale, self.out_scale = float(sc.scale), float(sc.out_scale)
        flat = 32 * (h // 4) * (w // 4)
        self.enc = nn.Sequential(
            nn.Conv2d(c, 16, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 4, 2, 1),
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
            nn.Unflatten(1, (32, h // 4, w // 4)),
            nn.ConvTranspose2d(32, 16, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, c, 4, 2, 1),
            nn.Flatten(),
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = (x.reshape(-1, *self.shape) - self.in_shift) / self.in_scale
        mu, logvar = self.head(self.enc(x)).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        return self.out_shift + self.out_scale * self.dec(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(mu), mu, logvar
