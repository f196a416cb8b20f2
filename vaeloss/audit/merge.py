"""The shards of one audit joined (``vaeloss merge``): the audit planned again from the
shards' options (nothing trained), checked to be the audit they ran, its sweep taken from
their numbers, and judged and concluded as one run is (:func:`~vaeloss.audit.execute.conclude`)."""

from __future__ import annotations

from pathlib import Path

from vaeloss.audit.execute import AuditRun, conclude
from vaeloss.audit.plan import plan_audit
from vaeloss.audit.shards import ShardReport, audit_identity, sweep_from_shards
from vaeloss.audit.stop import StopRequest
from vaeloss.errors import ReportFolderError

__all__ = ["MODEL_FIGURES", "merge_shards"]

# the figures drawn from the audited model's weights: the merge takes them from its shard
MODEL_FIGURES = ("reconstructions.png", "samples.png", "manifold.png", "latent.png")


def merge_shards(shards: list[ShardReport]) -> tuple[AuditRun, dict[str, Path]]:
    """The whole audit from its shards (see :func:`~vaeloss.audit.shards.read_shards`), and
    the figures of the audited model to copy from the shard that trained it ({name: file}).

    Raises:
        ReportFolderError: the loss, model or data files changed since the shards ran.
    """
    opts = shards[0].options
    plan = plan_audit(opts)
    if audit_identity(opts, plan) != shards[0].identity:
        raise ReportFolderError(
            f"Expected the loss, model and data files the shards read but {opts.loss or opts.model} or "
            f"the data changed since (or vaeloss did). Try vaeloss merge where the shards ran, on unchanged "
            f"files, or run the shards again."
        )
    run = conclude(plan, sweep_from_shards(plan, shards), StopRequest())
    home = next(s for s in shards if plan.current_model in s.measured())
    borrowed = {
        name.removesuffix(".png"): home.folder / name
        for name in MODEL_FIGURES
        if (home.folder / name).exists()
    }
    return run, borrowed
