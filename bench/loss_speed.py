"""The fused Bernoulli NLL (vaeloss.objective.fused) against PyTorch's, in one process.

Prints a table of microseconds and ratios for the training shape of the pytorch/examples model
(batch 128 x 784) and an evaluation chunk (IWAE, 4096 x 784), forward only and forward +
backward; each number is the median of 15 rounds of 20 calls, the two versions alternating.
Run: python bench/loss_speed.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from vaeloss.objective.fused import bernoulli_logits_nll


def per_call_us(fn: Callable[[], object], calls: int = 20) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls * 1e6


def main() -> None:
    print(f"{'case':<40} {'torch us':>9} {'fused us':>9} {'ratio':>6}")
    for rows in (128, 4096):
        g = torch.Generator().manual_seed(0)
        logits = (torch.randn(rows, 784, generator=g) * 4).requires_grad_()
        target = torch.rand(rows, 784, generator=g)

        def torch_fwd() -> object:
            with torch.no_grad():
                return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)

        def fused_fwd() -> object:
            with torch.no_grad():
                return bernoulli_logits_nll(logits, target).sum(-1)

        def torch_both() -> object:
            loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1).mean()
            return torch.autograd.grad(loss, logits)

        def fused_both() -> object:
            return torch.autograd.grad(bernoulli_logits_nll(logits, target).sum(-1).mean(), logits)

        pairs = (("forward", torch_fwd, fused_fwd), ("forward+backward", torch_both, fused_both))
        for name, ref, ours in pairs:
            ref(), ours()
            times: dict[str, list[float]] = {"ref": [], "ours": []}
            for _ in range(15):
                times["ref"].append(per_call_us(ref))
                times["ours"].append(per_call_us(ours))
            r, o = statistics.median(times["ref"]), statistics.median(times["ours"])
            print(f"{f'{rows} x 784, {name}':<40} {r:9.0f} {o:9.0f} {o / r:6.2f}")


if __name__ == "__main__":
    main()
