"""BatchedAdam against torch.optim.Adam: S models at once, each at its own learning rate."""

import pytest
import torch
from torch import nn

from vaeloss.engine.optim import BatchedAdam


def _grads(step, shape):
    return torch.randn(shape, generator=torch.Generator().manual_seed(100 + step))


@pytest.mark.parametrize("rates", [(0.01, 0.01, 0.01), (0.01, 0.002, 0.0)], ids=["equal", "per-model"])
def test_stacked_models_step_like_separate_adams(rates):
    start = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    w = nn.Parameter(start.clone())
    opt = BatchedAdam([(w, None)], n_models=3, lr=0.01)
    opt.lr[:] = torch.tensor(rates)
    refs = [nn.Parameter(start[s].clone()) for s in range(3)]
    ref_opts = [torch.optim.Adam([p], lr=r) for p, r in zip(refs, rates)]
    for step in range(20):
        g = _grads(step, (3, 4, 5))
        w.grad = g.clone()
        opt.step()
        for s, (p, o) in enumerate(zip(refs, ref_opts)):
            p.grad = g[s].clone()
            o.step()
    for s in range(3):
        torch.testing.assert_close(w.detach()[s], refs[s].detach(), rtol=1e-5, atol=1e-6)
    if rates[2] == 0:
        torch.testing.assert_close(w.detach()[2], start[2])  # rate 0: it does not move


def test_models_of_their_own_and_a_warm_up_scale():
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))
    opt = BatchedAdam([(a, 0), (b, 1)], n_models=2, lr=0.1)
    opt.lr[1] = 0.05
    ref_a, ref_b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))
    ra, rb = torch.optim.Adam([ref_a], lr=0.1), torch.optim.Adam([ref_b], lr=0.05)
    for step, scale in enumerate((0.25, 0.5, 1.0, 1.0)):
        ga, gb = _grads(step, (3,)), _grads(step + 50, (2,))
        a.grad, b.grad, ref_a.grad, ref_b.grad = ga.clone(), gb.clone(), ga.clone(), gb.clone()
        opt.step(scale=scale)
        for group, base in ((ra.param_groups[0], 0.1), (rb.param_groups[0], 0.05)):
            group["lr"] = base * scale
        ra.step()
        rb.step()
    torch.testing.assert_close(a.detach(), ref_a.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.detach(), ref_b.detach(), rtol=1e-5, atol=1e-6)
