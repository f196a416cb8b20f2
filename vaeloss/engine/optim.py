r"""Adam for S models trained at once, with a learning rate per model.

The models of a sweep share parameter tensors stacked on their first dim (``[S, ...]``), or
keep their own (one model a tensor). Adam is element-wise, so one step over the stacked
tensors is S independent Adam steps:

.. math::  m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,
   \quad p \leftarrow p - \eta_s\,\frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

The step is PyTorch's fused Adam kernel (``torch._fused_adam_``, the one ``torch.optim.Adam(
fused=True)`` runs, called directly: creating a ``torch.optim`` optimiser imports
``torch._dynamo``, 2 s of every audit's start-up on this CPU) at the largest rate
:math:`\eta_0`; a model s whose rate is lower is then moved back along its step,
:math:`p \leftarrow p_{new} + (1 - \eta_s/\eta_0) (p_{old} - p_{new})` (one ``lerp``), which is
the same update at rate :math:`\eta_s`. A model with rate 0 does not move (it converged, or
diverged). Tested against ``torch.optim.Adam`` (tests/engine/test_optim.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BatchedAdam"]


class BatchedAdam:
    """Adam over parameters of S models with per-model learning rates (``lr``, a tensor [S]
    that may be lowered per model between steps, never raised above the initial rate).

    Args:
        params: (parameter, model) pairs: ``model`` None for a tensor stacked over the S models
            on its first dim, else the index of the one model it belongs to.
        n_models: S.
        lr: the initial learning rate of every model.
        betas, eps: Adam's constants.

    >>> w = nn.Parameter(torch.zeros(2, 3))
    >>> opt = BatchedAdam([(w, None)], n_models=2, lr=0.1)
    >>> w.grad = torch.ones(2, 3)
    >>> opt.lr[1] = 0.0
    >>> opt.step()
    >>> w.detach()
    tensor([[-0.1000, -0.1000, -0.1000],
            [ 0.0000,  0.0000,  0.0000]])
    """

    def __init__(
        self,
        params: Sequence[tuple[nn.Parameter, int | None]],
        *,
        n_models: int,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.n_models = n_models
        self.base_lr = float(lr)
        self.lr = torch.full((n_models,), float(lr))
        self.betas, self.eps = betas, eps
        tensors = [p for p, _ in self.params]
        self._exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in tensors]
        self._exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in tensors]
        self._steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in tensors]

    def zero_grad(self) -> None:
        for p, _ in self.params:
            p.grad = None

    def _adam_step(self, lr: float) -> None:
        """One Adam step at rate ``lr`` of every parameter that has a gradient."""
        live = [i for i, (p, _) in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params: list[torch.Tensor] = [self.params[i][0] for i in live]
        grads: list[torch.Tensor] = [p.grad for p in params if p.grad is not None]
        steps = [self._steps[i] for i in live]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params,
            grads,
            [self._exp_avg[i] for i in live],
            [self._exp_avg_sq[i] for i in live],
            [],
            steps,
            lr=lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    @torch.no_grad()
    def step(self, *, scale: float = 1.0) -> None:
        """One Adam step of every model at its own learning rate times ``scale`` (a warm-up)."""
        keep = 1 - self.lr / self.base_lr  # [S]: how much of its step each model takes back
        slowed = {s for s in range(self.n_models) if float(keep[s]) > 0}
        old = {
            i: p.detach().clone()
            for i, (p, model) in enumerate(self.params)
            if p.grad is not None and (model in slowed if model is not None else slowed)
        }
        self._adam_step(self.base_lr * scale)
        for i, saved in old.items():
            p, model = self.params[i]
            if model is None:
                weight = keep.to(p.device, p.dtype).view(-1, *([1] * (p.dim() - 1)))
                p.lerp_(saved, weight)
            else:
                p.lerp_(saved, float(keep[model]))
