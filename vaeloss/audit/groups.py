"""The sweep in groups: :func:`groups_of` splits the sweep's models into groups (each trained
as one batched model, wherever an executor runs it), and :func:`join` puts what the groups
produced back together, model by model in the sweep's order, as if trained as one.

A model's numbers do not depend on its group: it is initialised, fed noise and evaluated from
generators of its own seed (:mod:`vaeloss.metrics.noise`), and each model converges on its own
(:mod:`vaeloss.engine.states`). A group that was lost (its worker died twice) keeps its place:
its models are reported as lost, with the reason.

>>> from vaeloss.audit.plan import SweepMember
>>> [g.positions for g in groups_of([SweepMember(i, b) for i, b in enumerate([.1, 1, 10])], 2)]
[[0, 1], [2]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from vaeloss.audit.cost import CostEstimate
from vaeloss.audit.plan import SweepMember
from vaeloss.audit.result import GroupRecord
from vaeloss.engine.evaluate import ModelMetrics
from vaeloss.engine.joined import JoinedVAE
from vaeloss.engine.models import BatchedVAE
from vaeloss.engine.states import Divergence, ModelStatus
from vaeloss.engine.trainer import TrainResult
from vaeloss.errors import InvalidArgumentError

__all__ = [
    "HERE",
    "ElsewhereGroup",
    "GroupOutcome",
    "LostGroup",
    "Outcome",
    "SweepGroup",
    "SweepOutcome",
    "groups_of",
    "join",
]


HERE = "this process"  # where a group ran when it ran in the audit's own process


@dataclass(frozen=True)
class SweepGroup:
    """Models of the sweep trained together, as one batched model."""

    members: tuple[SweepMember, ...]
    index: int = 0  # its place among the sweep's groups
    first: int = 0  # the place of its first model among the sweep's members

    @property
    def betas(self) -> list[float]:
        return [m.elbo_beta for m in self.members]

    @property
    def positions(self) -> list[int]:
        """Its models' places in the sweep's members (``AuditPlan.members``)."""
        return list(range(self.first, self.first + len(self.members)))


@dataclass
class GroupOutcome:
    """What one group's run produced: its trained models, their metrics, the cost measured
    before training, and where it ran."""

    group: SweepGroup
    trained: TrainResult
    metrics: list[ModelMetrics | None]  # None: not measured (every model of the group diverged)
    cost: CostEstimate
    where: str = HERE
    seconds_setup: float = 0.0
    seconds_evaluation: float = 0.0


@dataclass(frozen=True)
class ElsewhereGroup:
    """A group another shard trains (``--shard I/N``): not measured here."""

    group: SweepGroup
    shard: int
    count: int


@dataclass(frozen=True)
class LostGroup:
    """A group that produced nothing: where it ran and why it was lost."""

    group: SweepGroup
    reason: str
    where: str


def groups_of(members: Sequence[SweepMember], n_groups: int) -> list[SweepGroup]:
    """``members`` in ``n_groups`` contiguous groups as equal as can be (the first ones one model
    larger), at most one group per model."""
    if n_groups < 1:
        raise InvalidArgumentError(f"Expected at least 1 group but got n_groups={n_groups}.")
    n = min(n_groups, len(members))
    size, extra = divmod(len(members), n)
    groups, start = [], 0
    for g in range(n):
        stop = start + size + (1 if g < extra else 0)
        groups.append(SweepGroup(tuple(members[start:stop]), g, start))
        start = stop
    return groups


@dataclass
class SweepOutcome:
    """The groups' outcomes joined, one entry per model of the sweep, in its order.

    ``model`` holds the models of every group that came back (a lost group's are None in a
    :class:`~vaeloss.engine.joined.JoinedVAE`; None when every group was lost), ``history``
    their epochs with ``model`` numbered across the sweep; ``lost`` says, per model, why it
    was lost (None: it was not), ``elsewhere`` which shard trains it when this one does not.
    Seconds are the longest group's (groups run side by side).
    """

    model: BatchedVAE | None
    history: pd.DataFrame
    stopped: list[Divergence | None]
    status: list[ModelStatus | None]
    metrics: list[ModelMetrics | None]
    lost: list[str | None]
    elsewhere: list[str | None]
    groups: list[GroupRecord]
    cost: CostEstimate | None
    interrupted: bool
    steps: int
    epochs_run: int
    seconds_setup: float
    seconds_training: float
    seconds_evaluation: float


Outcome = GroupOutcome | LostGroup | ElsewhereGroup


def _missing(o: LostGroup | ElsewhereGroup, shard: int | None) -> tuple[str | None, str | None, GroupRecord]:
    """A group that brought back no models: why it was lost (None: it was not), which shard
    trains it instead (None: none), and its record."""
    if isinstance(o, LostGroup):
        return o.reason, None, GroupRecord(o.group.positions, o.where, lost=o.reason, shard=shard)
    other = f"shard {o.shard}/{o.count}"
    return (
        None,
        other,
        GroupRecord(o.group.positions, f"{other} (another job)", shard=o.shard, elsewhere=True),
    )


def join(outcomes: Sequence[Outcome], *, shard: int | None = None) -> SweepOutcome:
    """The outcomes of a sweep's groups (in the groups' order) as one :class:`SweepOutcome`
    (``shard``: the shard they ran in, recorded with each group)."""
    done = [o for o in outcomes if isinstance(o, GroupOutcome)]
    parts: list[BatchedVAE | None] = []
    elsewhere: list[str | None] = []
    history: list[pd.DataFrame] = []
    stopped: list[Divergence | None] = []
    status: list[ModelStatus | None] = []
    metrics: list[ModelMetrics | None] = []
    lost: list[str | None] = []
    records: list[GroupRecord] = []
    for o in outcomes:
        n = len(o.group.members)
        if not isinstance(o, GroupOutcome):
            reason, other, record = _missing(o, shard)
            parts.append(None)
            stopped += [None] * n
            status += [None] * n
            metrics += [None] * n
            lost += [reason] * n
            elsewhere += [other] * n
            records.append(record)
            continue
        t = o.trained
        parts.append(t.model)
        h = t.history.copy()
        if len(h):
            h["model"] = h["model"] + o.group.first
        history.append(h)
        stopped += list(t.stopped)
        status += list(t.status)
        metrics += list(o.metrics)
        lost += [None] * n
        elsewhere += [None] * n
        records.append(GroupRecord(o.group.positions, o.where, t.seconds, o.seconds_evaluation, shard=shard))
    model = (
        None
        if not done
        else done[0].trained.model
        if len(outcomes) == 1
        else JoinedVAE(parts, [len(o.group.members) for o in outcomes])
    )
    return SweepOutcome(
        model=model,
        history=pd.concat(history, ignore_index=True) if history else pd.DataFrame(),
        stopped=stopped,
        status=status,
        metrics=metrics,
        lost=lost,
        elsewhere=elsewhere,
        groups=records,
        cost=done[0].cost if done else None,
        interrupted=any(o.trained.interrupted for o in done),
        steps=max((o.trained.steps for o in done), default=0),
        epochs_run=max((o.trained.epochs_run for o in done), default=0),
        seconds_setup=max((o.seconds_setup for o in done), default=0.0),
        seconds_training=max((o.trained.seconds for o in done), default=0.0),
        seconds_evaluation=max((o.seconds_evaluation for o in done), default=0.0),
    )
