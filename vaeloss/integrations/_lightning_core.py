"""The Lightning collapse callback's logic, apart from the Lightning namespace it is built for
(``lightning.pytorch`` or the old ``pytorch_lightning``: a class of one never mixes with the
other's, so :func:`callback_class` builds one per namespace)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from vaeloss.integrations.reconstructions import Reconstruct, ReconstructionTap, reconstruction_figure
from vaeloss.integrations.taps import Encode, PosteriorTaps, ScaleKind, find_posterior, to_logvar
from vaeloss.integrations.watch import CollapseWatch
from vaeloss.metrics import CollapseMonitor, CollapseSummary
from vaeloss.threads import single_threaded

__all__ = ["callback_class"]


class _Collapse:
    """Records the posterior's outputs during validation (forward hooks, eval mode, not in the
    sanity check) and logs the collapse scalars at the end of each validation epoch."""

    def __init__(
        self,
        *,
        mu: str | None = None,
        logvar: str | None = None,
        scale: ScaleKind | None = None,
        encode: Encode | None = None,
        reconstruct: Reconstruct | None = None,
        patience: int = 1,
        stop_on_collapse: bool = False,
        max_points: int = 2000,
        log_figures: bool = True,
    ) -> None:
        super().__init__()
        self.mu_name, self.scale_name, self.scale_kind, self.encode = mu, logvar, scale, encode
        self.watch = CollapseWatch(patience=patience, stop_on_collapse=stop_on_collapse)
        self.log_figures, self.reconstruct = log_figures, reconstruct
        self.recon = ReconstructionTap()
        self._told_no_grid = False
        self.monitor = CollapseMonitor(max_points=max_points)
        self.last: CollapseSummary | None = None
        self._hooks: list[Any] = []
        self._pending: Tensor | None = None

    # -- recording -------------------------------------------------------------------------
    def _install(self, module: nn.Module) -> None:
        taps: PosteriorTaps = find_posterior(module, self.mu_name, self.scale_name, self.scale_kind)
        modules = dict(module.named_modules())

        def on_mu(_m: nn.Module, _args: Any, out: Tensor) -> None:
            self._pending = out.detach()

        def on_scale(_m: nn.Module, _args: Any, out: Tensor) -> None:
            if self._pending is not None and self._pending.shape == out.shape:
                self.monitor.update(self._pending, to_logvar(out.detach(), taps.kind))
            self._pending = None

        self._hooks = [
            modules[taps.mu].register_forward_hook(on_mu),
            modules[taps.scale].register_forward_hook(on_scale),
        ]

    def _remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks, self._pending = [], None

    def on_validation_epoch_start(self, trainer: Any, pl_module: nn.Module) -> None:
        self.monitor.reset()
        if trainer.sanity_checking:
            return
        if self.encode is None:
            self._install(pl_module)
        if self._experiment(trainer) is not None:
            self.recon.arm(pl_module if self.reconstruct is None else None)

    def on_validation_batch_end(
        self, trainer: Any, pl_module: nn.Module, outputs: Any, batch: Any, *args: Any
    ) -> None:
        if self.encode is not None and not trainer.sanity_checking:
            with torch.no_grad():
                mu, logvar = self.encode(pl_module, batch)
            self.monitor.update(mu, logvar)
        if self.reconstruct is not None and not trainer.sanity_checking:
            self.recon.record(pl_module, batch, self.reconstruct)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._remove()
        self.recon.remove()
        if trainer.sanity_checking:
            return
        _reduce_across_processes(self.monitor)
        with single_threaded():  # small work: a second thread gains little, and spins when busy
            summary = self.monitor.summary()
            if summary is None:
                return
            self.last = summary
            for key, value in summary.scalars().items():
                pl_module.log(key, value, on_epoch=True, sync_dist=False)  # reduced already
            self._figures(trainer, summary)
        if self.watch.observe(summary, "validation epoch"):
            trainer.should_stop = True

    # -- what the user sees -------------------------------------------------------------------
    def _experiment(self, trainer: Any) -> Any | None:
        """The logger's writer when it takes figures (a TensorBoard logger), else None."""
        experiment = getattr(trainer.logger, "experiment", None) if self.log_figures else None
        return experiment if hasattr(experiment, "add_figure") else None

    def _figures(self, trainer: Any, summary: CollapseSummary) -> None:
        """The KL per dim as a bar chart and the reconstruction grid, to a TensorBoard logger."""
        experiment = self._experiment(trainer)
        if experiment is None:
            return
        from vaeloss.audit.figures import kl_bars_figure
        from vaeloss.metrics import ACTIVE_THRESHOLD

        active = [v > ACTIVE_THRESHOLD for v in summary.au_variances]
        epoch, step = trainer.current_epoch, trainer.global_step
        bars = kl_bars_figure(summary.kl_per_dim, active, f"KL per latent dim, epoch {epoch}")
        experiment.add_figure("collapse/kl_per_dim", bars, global_step=step, close=True)
        grid = None if self.recon.pair is None else reconstruction_figure(*self.recon.pair, f"epoch {epoch}")
        if grid is not None:
            experiment.add_figure("collapse/reconstructions", grid, global_step=step, close=True)
        elif not self._told_no_grid:
            self._told_no_grid = True
            warnings.warn(
                "vaeloss CollapseCallback: no reconstruction grid, since the module's forward was "
                "not called on a batch of images in validation or gave no output shaped like its "
                "input. Try CollapseCallback(reconstruct=lambda module, batch: (x, x_hat)).",
                UserWarning,
                stacklevel=2,
            )


def _reduce_across_processes(monitor: CollapseMonitor) -> None:
    """Under DDP, every process's monitor becomes the merge of all of them."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, monitor.state)
    monitor.reset()
    for state in states:
        if state is not None:
            other = CollapseMonitor(max_points=monitor.max_points)
            other.state = state
            monitor.merge(other)


def callback_class(callback_base: type, namespace: str) -> Callable[..., Any]:
    """The collapse callback for one Lightning namespace (its ``Callback`` class)."""
    doc = f"""Posterior-collapse metrics logged at the end of each validation epoch ({namespace}).

    Logs ``collapse/active_units``, ``collapse/kl`` (nats per sample), ``collapse/mi``,
    ``collapse/collapsed`` (1.0 or 0.0) and ``collapse/kl_dim/zNN`` with ``pl_module.log``, so
    ``EarlyStopping(monitor="collapse/active_units", mode="max")`` works; to a TensorBoard
    logger, a KL-per-dim bar chart and a reconstruction grid (the first 8 inputs of the first
    validation batch over their reconstructions; logits are shown through a sigmoid).

    The posterior's submodules are found by their names (``fc_mu``, ``fc_logvar``), or named:
    ``mu="enc.mu", logvar="enc.logvar"`` (``scale="std"`` when that one gives a standard
    deviation), or ``encode=lambda module, batch: (mu, logvar)``. The reconstruction is the
    output of the module's ``forward`` shaped like its input, or
    ``reconstruct=lambda module, batch: (x, x_hat)``.

    Warns once (:class:`CollapseWarning`) after ``patience`` collapsed epochs; stops training
    only with ``stop_on_collapse=True``. Under DDP the rows of every process are merged; memory
    is bounded: every metric is exact over all rows but the mutual information, estimated on a
    uniform sample of ``max_points`` (2000: at most log 2000 = 7.6 nats, and about 0.1 s per
    epoch; its cost grows as the square of it).
    """
    return type("CollapseCallback", (_Collapse, callback_base), {"__doc__": doc, "__module__": namespace})
