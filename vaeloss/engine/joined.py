"""Batched models trained apart (a sweep's groups, on Ray or in this process) seen as one:
model s of the whole sweep is model ``s - offset`` of the part that holds it. A part may be
missing (a group that was lost): its models cannot be run, the others can.

>>> from vaeloss.engine.models import BatchedMLPVAE
>>> a, b = BatchedMLPVAE(6, (4,), 2, n_models=2), BatchedMLPVAE(6, (4,), 2, n_models=1)
>>> both = JoinedVAE([a, b], [2, 1])
>>> x = torch.rand(5, 6)
>>> both.n_models, both.encode(x)[0].shape, torch.equal(both.encode_one(2, x)[0], b.encode(x)[0][0])
(3, torch.Size([3, 5, 2]), True)
>>> JoinedVAE([None, b], [2, 1]).runs(0), JoinedVAE([None, b], [2, 1]).runs(2)
(False, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vaeloss.engine.models import BatchedVAE
from vaeloss.errors import InvalidArgumentError

__all__ = ["JoinedVAE"]


class JoinedVAE(BatchedVAE):
    """The parts' models end to end: ``encode(x [N, D]) -> [S, N, k]`` with S the parts' total,
    ``decode(z [S, N, k]) -> [S, N, D]``; :meth:`encode_one` and :meth:`decode_one` run the
    one part that holds the model. For reading a trained sweep (figures, metrics): it is not
    trained as one. ``sizes[i]`` is the number of models of part i (None: a part lost)."""

    def __init__(self, parts: Sequence[BatchedVAE | None], sizes: Sequence[int]) -> None:
        super().__init__()
        here = [p for p in parts if p is not None]
        if not here or len(parts) != len(sizes) or len({(p.latent_dim, p.data_dim) for p in here}) != 1:
            raise InvalidArgumentError(
                f"Expected one size per part and parts of the same latent and data dims but got "
                f"parts={[None if p is None else (p.n_models, p.latent_dim, p.data_dim) for p in parts]}, "
                f"sizes={list(sizes)}."
            )
        self.parts = nn.ModuleList(here)
        self._index = [None if p is None else here.index(p) for p in parts]
        self.sizes = list(sizes)
        self.n_models, self.latent_dim, self.data_dim = sum(sizes), here[0].latent_dim, here[0].data_dim

    @property
    def complete(self) -> bool:
        """Whether every part is here (then :meth:`encode` and :meth:`decode` run)."""
        return None not in self._index

    def _where(self, s: int) -> tuple[BatchedVAE | None, int]:
        if not 0 <= s < self.n_models:
            raise InvalidArgumentError(f"Expected a model index below {self.n_models} but got s={s}.")
        for index, size in zip(self._index, self.sizes):
            if s < size:
                return (None if index is None else self.parts[index]), s  # type: ignore[return-value]
            s -= size
        raise AssertionError("unreachable")

    def runs(self, s: int) -> bool:
        """Whether model s is here (its group was not lost)."""
        return self._where(s)[0] is not None

    def _part(self, s: int) -> tuple[BatchedVAE, int]:
        part, i = self._where(s)
        if part is None:
            raise InvalidArgumentError(f"Expected a model that was trained but model s={s} was lost.")
        return part, i

    def _all(self) -> list[BatchedVAE]:
        if not self.complete:
            raise InvalidArgumentError("Expected every part of the sweep but some of its groups were lost.")
        return [self.parts[i] for i in self._index]  # type: ignore[index, misc]

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        found = [part.encode(x) for part in self._all()]
        return torch.cat([mu for mu, _ in found]), torch.cat([lv for _, lv in found])

    def decode(self, z: Tensor) -> Tensor:
        return torch.cat([part.decode(zz) for part, zz in zip(self._all(), z.split(self.sizes))])

    def encode_one(self, s: int, x: Tensor) -> tuple[Tensor, Tensor]:
        part, i = self._part(s)
        return part.encode_one(i, x)

    def decode_one(self, s: int, z: Tensor) -> Tensor:
        part, i = self._part(s)
        return part.decode_one(i, z)
