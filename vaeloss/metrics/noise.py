r"""Standard normal draws for S models evaluated together, each model's from its own generator.

A batch of models evaluated as one must give each model the numbers it would get evaluated
alone (a sweep split into groups, on Ray or in shards, is merged into one report): so each
model draws from its own :class:`torch.Generator`, one sample at a time, and its draws
depend on its seed only, not on the other models of the batch nor on how the samples are
chunked into decoder calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vaeloss.errors import InvalidArgumentError

__all__ = ["ModelNoise"]


@dataclass
class ModelNoise:
    """Draws of shape ``[samples, S, *rest]`` for S models, model s's from ``generators[s]``.

    >>> g = lambda: ModelNoise.seeded([7, 8], base=0)
    >>> both, alone = g().draw(3, (2, 4, 2)), ModelNoise.seeded([8], base=0).draw(3, (1, 4, 2))
    >>> both.shape, torch.equal(both[:, 1], alone[:, 0])
    (torch.Size([3, 2, 4, 2]), True)
    >>> split = g(); first = split.draw(1, (2, 4, 2)); rest = split.draw(2, (2, 4, 2))
    >>> torch.equal(torch.cat([first, rest]), g().draw(3, (2, 4, 2)))
    True
    """

    generators: list[torch.Generator]

    @classmethod
    def seeded(
        cls, model_seeds: Sequence[int], *, base: int, device: torch.device | str = "cpu"
    ) -> ModelNoise:
        """One generator per model, seeded ``base * 1_000_003 + model_seed``."""
        return cls([torch.Generator(device=device).manual_seed(base * 1_000_003 + s) for s in model_seeds])

    def draw(self, samples: int, shape: Sequence[int], *, dtype: torch.dtype = torch.float32) -> Tensor:
        """``samples`` draws of ``shape`` ``[S, *rest]`` (S = the number of generators):
        ``[samples, S, *rest]``."""
        if shape[0] != len(self.generators):
            raise InvalidArgumentError(
                f"Expected shape[0] = {len(self.generators)} models but got shape={tuple(shape)}."
            )
        rest = tuple(shape[1:])
        per_model = [
            torch.stack(
                [torch.randn(rest, generator=g, dtype=dtype, device=g.device) for _ in range(samples)]
            )
            if samples
            else torch.empty((0, *rest), dtype=dtype, device=g.device)
            for g in self.generators
        ]
        return torch.stack(per_model, dim=1)

    def one(self, s: int) -> torch.Generator:
        """Model s's generator (for a metric drawing from one model's posterior)."""
        return self.generators[s]
