"""``vaeloss audit --tensorboard DIR``: each model of the sweep as a TensorBoard run.

A run ``DIR/<audit>/m<i>-beta=<weight>`` per sweep member (its KL weight in the audited loss's
own units) holds its training curves, one point per epoch at the training step it was measured
at (``train/recon``, ``train/kl``, ``val/recon``, ``val/kl``, ``val/loss``: nats per sample;
``lr``; ``collapse/active_units`` and ``collapse/kl_dim/zNN`` on the held-out rows), and its
final metrics as TensorBoard hparams (``beta``, ``beta_elbo``, the setup; the metrics under
``final/``: those of :meth:`~vaeloss.metrics.CollapseSummary.scalars` and the decoder's).

Nothing is overwritten: ``<audit>`` is the report folder's name (a new name, with ``-2``...
added when ``DIR`` already has it); the runs are written into ``DIR/.<audit>.tmp-PID`` and
renamed into place at the end; nothing else in ``DIR`` is touched.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaeloss.errors import ReportFolderError, missing_extra
from vaeloss.metrics.summary import PREFIX

if TYPE_CHECKING:
    import pandas as pd

    from vaeloss.audit.execute import AuditRun
    from vaeloss.audit.result import AuditResult, SweepRow

__all__ = ["FINAL", "CURVES", "TensorBoardTarget", "member_name", "prepare_tensorboard", "write_tensorboard"]

FINAL = "final/"
"""The start of the final metrics' tags (the hparams' metrics)."""

CURVES = {
    "train_recon": "train/recon",
    "train_kl": "train/kl",
    "val_recon": "val/recon",
    "val_kl": "val/kl",
    "val_loss": "val/loss",
    "lr": "lr",
    "active_units": f"{PREFIX}active_units",
}
"""History column -> tag (the per-dim KL columns ``kl_j`` are ``collapse/kl_dim/zNN``)."""

_DECODER_METRICS = ("recon", "elbo", "iwae_nll", "output_diversity", "latent_usage")


@dataclass(frozen=True)
class TensorBoardTarget:
    """Where the runs go: ``root/name`` (new), written first into ``root/.name.tmp-PID``."""

    root: Path
    name: str

    @property
    def final(self) -> Path:
        return self.root / self.name

    @property
    def tmp(self) -> Path:
        return self.root / f".{self.name}.tmp-{os.getpid()}"


def _summary_writer() -> Any:
    """torch's ``SummaryWriter``. Without this, tensorboard imports TensorFlow when it is
    installed (5 s and its log lines) to write files; its own ``notf`` switch makes it use its
    built-in file writing instead (when TensorFlow is not loaded already)."""
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch's writer needs the tensorboard package
        raise missing_extra("tensorboard", "tensorboard", exc) from None
    return SummaryWriter


def prepare_tensorboard(root: Path, name: str) -> TensorBoardTarget:
    """Check, before any training, that the runs can be written under ``root``: tensorboard is
    installed and ``root`` is (or can be made) a writable folder. The audit's folder is
    ``name``, or ``name-2``... when ``root`` has that already.

    Raises:
        MissingExtraError: tensorboard is not installed.
        ReportFolderError: ``root`` is a file or cannot be written.
    """
    _summary_writer()
    root = Path(os.path.abspath(Path(root).expanduser()))
    if root.exists() and not root.is_dir():
        raise ReportFolderError(
            f"Expected --tensorboard to be a folder but got tensorboard={str(root)!r}, an existing "
            f"file. Try --tensorboard runs/."
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".vaeloss-write-test-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise ReportFolderError(
            f"Expected a folder that can be written for --tensorboard but got "
            f"tensorboard={str(root)!r}: {exc.strerror or exc}. Try --tensorboard in a folder you "
            f"can write to."
        ) from None
    unique, n = name, 2
    while (root / unique).exists():
        unique, n = f"{name}-{n}", n + 1
    return TensorBoardTarget(root, unique)


def member_name(index: int, row: SweepRow, seeds: int = 1) -> str:
    """The run's name: ``m0-beta=0.001`` (the KL weight in the audited loss's own units), with
    the model's seed when the audit has several per beta.

    >>> from types import SimpleNamespace
    >>> member_name(3, SimpleNamespace(kl_weight=2.5e-4, seed=1000003), seeds=2)
    'm3-beta=0.00025-seed=1000003'
    """
    name = f"m{index}-beta={row.kl_weight:g}"
    return name + (f"-seed={row.seed}" if seeds > 1 else "")


def _curves(writer: Any, history: pd.DataFrame, latent_dim: int) -> None:
    width = max(2, len(str(latent_dim - 1)))
    for record in history.to_dict("records"):
        step = int(record["step"])
        for column, tag in CURVES.items():
            if column in record and math.isfinite(float(record[column])):
                writer.add_scalar(tag, float(record[column]), step)
        for j in range(latent_dim):
            value = record.get(f"kl_{j}")
            if value is not None and math.isfinite(float(value)):
                writer.add_scalar(f"{PREFIX}kl_dim/z{j:0{width}d}", float(value), step)


def final_metrics(row: SweepRow) -> dict[str, float]:
    """A model's final metrics as the hparams' metrics (``final/active_units``...): those of
    :meth:`~vaeloss.metrics.CollapseSummary.scalars` but the per-dim KL, and the decoder's;
    a value not measured (a diverged model, an interrupted evaluation) is left out."""
    m = row.metrics
    if m is None:
        return {}
    out = {k: v for k, v in m.scalars(FINAL).items() if "/kl_dim/" not in k}
    out.update({f"{FINAL}{name}": getattr(m, name) for name in _DECODER_METRICS})
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}


def _hparams(res: AuditResult, row: SweepRow) -> dict[str, Any]:
    s = res.setup
    return {
        "beta": row.kl_weight,
        "beta_elbo": row.elbo_beta,
        "loss": res.objective.described,
        "data": s.data,
        "model": s.model,
        "latent_dim": s.latent_dim,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "seed": row.seed,
        "verdict": row.verdict.name,
    }


def write_tensorboard(run: AuditRun, target: TensorBoardTarget) -> Path:
    """Write one run per sweep member (see the module) and rename them into place.

    Returns:
        the folder holding the runs, ``target.final``.
    """
    writer_class = _summary_writer()
    res, tmp = run.result, target.tmp
    try:
        for i, row in enumerate(res.sweep):
            path = tmp / member_name(i, row, res.setup.seeds)
            with writer_class(log_dir=str(path)) as writer:
                history = run.history[run.history["model"] == i]
                _curves(writer, history, res.setup.latent_dim)
                last = int(history["step"].max()) if len(history) else 0
                writer.add_hparams(_hparams(res, row), final_metrics(row), run_name=".", global_step=last)
        os.replace(tmp, target.final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target.final
