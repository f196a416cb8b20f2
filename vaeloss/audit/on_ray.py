"""The sweep's groups as Ray tasks (``vaeloss audit --executor ray``, ``pip install 'vaeloss[ray]'``).

:class:`RayExecutor` splits the sweep into groups (one per GPU of the cluster when CUDA is
used, else one per CPU, at most one per model), sends the plan once to Ray's object store and
runs each group in a task (:func:`~vaeloss.audit.execute.run_group`, exactly as in this
process: same seeds, same numbers) with the resources it needs. A worker that dies is retried
(Ray's task retries); a group whose every attempt died is returned as a
:class:`~vaeloss.audit.groups.LostGroup` with the reason. A stop request (Ctrl-C) is passed to
the tasks through a small actor they poll: each ends its training, evaluates what it has and
returns, as a local run does; tasks that have not returned a minute later are cancelled.

Where Ray runs: no address starts a local instance sized to this machine (on 127.0.0.1,
stopped at the end); ``auto`` or ``HOST:PORT`` joins a running cluster, ``ray://HOST:PORT``
connects through Ray Client. A user's model file and its folder travel to a cluster's workers
in the task's runtime environment (``working_dir``), loaded there by the same rules.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vaeloss.audit.execute import run_group
from vaeloss.audit.groups import GroupOutcome, LostGroup, SweepGroup, groups_of
from vaeloss.audit.plan import AuditPlan
from vaeloss.audit.stop import StopRequest
from vaeloss.engine.build import UserModel
from vaeloss.errors import ExecutorError, first_line, missing_extra
from vaeloss.threads import available_cores

__all__ = ["RayExecutor", "check_reachable", "portable"]

POLL_SECONDS = 0.5  # how often a task asks whether to stop
CANCEL_AFTER = 60.0  # seconds a task has to return after a stop request before it is cancelled
CONNECT_TIMEOUT = 5.0  # seconds to wait for a cluster's address to answer
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's nodes use 127.0.0.1 only


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise missing_extra("ray", "ray", exc) from None
    return ray


def check_reachable(address: str, *, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise :class:`~vaeloss.errors.ExecutorError` unless something answers at ``address``
    (``HOST:PORT`` or ``ray://HOST:PORT``; ``auto`` is left to Ray, which answers at once).
    Ray itself keeps retrying an address that does not answer for minutes.

    >>> check_reachable("127.0.0.1:1", timeout=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vaeloss.errors.ExecutorError: Expected a Ray cluster at --ray-address 127.0.0.1:1 but nothing ...
    """
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(
            f"Expected --ray-address auto, HOST:PORT or ray://HOST:PORT but got ray_address={address!r}. "
            f"Try --ray-address 127.0.0.1:6379."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ExecutorError(
            f"Expected a Ray cluster at --ray-address {address} but nothing answers there "
            f"({type(exc).__name__}). Try ray start --head on that machine, or --ray-address auto on a "
            f"node of the cluster, or no --ray-address for a local instance."
        ) from None


def portable(plan: AuditPlan, *, cluster: bool) -> tuple[AuditPlan, dict[str, Any]]:
    """The plan as the workers load it, and the tasks' runtime environment: a user's model
    named by its absolute path (a local instance shares this file system), or, on a cluster,
    by its path inside its folder, which travels as the ``working_dir``. Progress bars are
    the driver's only."""
    plan = replace(plan, evaluation=replace(plan.evaluation, progress=False))
    source = plan.source
    if not isinstance(source, UserModel):
        return plan, {}
    from vaeloss.usercode.target import resolve_target

    name = source.spec.rpartition(":")[2]
    target = resolve_target(source.spec)
    path = Path(target.path).resolve()
    if not cluster:
        return replace(plan, source=replace(source, spec=f"{path}:{name}")), {}
    root = Path(target.search_path[0]).resolve() if target.search_path else path.parent
    inside = path.relative_to(root).as_posix()
    return replace(plan, source=replace(source, spec=f"{inside}:{name}")), {"working_dir": str(root)}


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


class _PollingStop(StopRequest):
    """A task's stop request: the driver's, asked of the flag actor at most every
    :data:`POLL_SECONDS`."""

    def __init__(self, flag: Any) -> None:
        super().__init__()
        self.flag, self.asked = flag, 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.reason is None and now - self.asked >= POLL_SECONDS:
            self.asked = now
            self.reason = _ray().get(self.flag.reason.remote())
        return self.reason is not None


class _Flag:
    """The driver's stop request, held by an actor for the tasks to read."""

    def __init__(self) -> None:
        self.why: str | None = None

    def request(self, why: str) -> None:
        self.why = self.why or why

    def reason(self) -> str | None:
        return self.why


def _group_task(
    plan: AuditPlan, group: SweepGroup, flag: Any, already: float, cpus: int
) -> tuple[GroupOutcome, list[str]]:
    """One group in a Ray worker: :func:`run_group` with its share of the time budget, its
    CPUs as torch's threads, the trained models moved to the CPU for the driver."""
    import torch

    if not plan.setup.device.startswith("cuda"):
        torch.set_num_threads(cpus)
    notices: list[str] = []
    gpu = f", GPU {os.environ.get('CUDA_VISIBLE_DEVICES')}" if plan.setup.device.startswith("cuda") else ""
    outcome = run_group(
        plan,
        group,
        stop=_PollingStop(flag),
        notify=notices.append,
        started=time.perf_counter() - already,
        where=f"Ray worker on {socket.gethostname()} (pid {os.getpid()}, {_count(cpus, 'CPU')}{gpu})",
    )
    outcome.trained.model.cpu()
    return outcome, notices


@dataclass
class RayExecutor:
    """Runs the sweep's groups as Ray tasks (see the module docstring), once connected:
    ``with executor.connected(plan): execute(plan, executor=executor)``.

    Attributes:
        address: None (start a local instance), ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``.
        groups: groups to split the sweep into (None: one per GPU when CUDA is used, else one
            per CPU of the cluster).
        retries: attempts after the first for a task whose worker died.
    """

    address: str | None = None
    groups: int | None = None
    retries: int = 1
    _resources: dict[str, float] = field(default_factory=dict, repr=False)

    def connect(self, plan: AuditPlan) -> None:
        """Start or join Ray for ``plan`` (a user's model's folder is the job's working_dir on a
        cluster). Raises :class:`~vaeloss.errors.ExecutorError` when the cluster cannot be
        reached and :class:`~vaeloss.errors.MissingExtraError` without Ray."""
        ray = _ray()
        if self.address is not None:
            check_reachable(self.address)
        _, env = portable(plan, cluster=self.address is not None)
        quiet = {"logging_level": "ERROR", "log_to_driver": False, "include_dashboard": False}
        quiet["runtime_env"] = env or None
        try:
            if self.address is None:
                # a local instance for this machine only: its servers bind to 127.0.0.1 (Ray's
                # single-machine mode, as on macOS; by default they listen on every interface)
                os.environ.setdefault(LOOPBACK_ONLY, "0")
                ray.init(address="local", num_cpus=available_cores(), **quiet)
            else:
                ray.init(address=self.address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = first_line(exc, type(exc).__name__)
            raise ExecutorError(
                f"Expected to reach a Ray cluster at --ray-address {self.address} but Ray says: {first}. "
                f"Try RAY_AUTH_MODE=token for a cluster with token authentication (the default of "
                f"ray start since Ray 2.59; the token from ray get-auth-token), or ray start --head "
                f"first, or no --ray-address for a local instance."
            ) from None
        self._resources = dict(ray.cluster_resources())

    def close(self) -> None:
        ray = _ray()
        if ray.is_initialized():
            ray.shutdown()

    @contextlib.contextmanager
    def connected(self, plan: AuditPlan) -> Iterator[RayExecutor]:
        """:meth:`connect` for ``plan``, then :meth:`close` at the end. Meanwhile what Ray
        prints on the driver's stdout (``(raylet) A worker died...``) goes to stderr: stdout is
        the audit's output (``--json``)."""
        with contextlib.redirect_stdout(sys.stderr):
            self.connect(plan)
            try:
                yield self
            finally:
                self.close()

    @property
    def described(self) -> str:
        """``a local Ray instance (2 CPUs)`` or ``the Ray cluster at HOST:PORT (16 CPUs, 4 GPUs)``."""
        cpus, gpus = int(self._resources.get("CPU", 0)), int(self._resources.get("GPU", 0))
        what = f"{cpus} CPU{'s' if cpus != 1 else ''}" + (
            f", {gpus} GPU{'s' if gpus != 1 else ''}" if gpus else ""
        )
        where = "a local Ray instance" if self.address is None else f"the Ray cluster at {self.address}"
        return f"{where} ({what})"

    def device(self, plan: AuditPlan) -> str:
        """Where the tasks train: the cluster's GPUs for ``--device auto`` when it has any
        (the machine running the audit may have none), else the plan's device."""
        asked = "auto" if plan.options is None else plan.options.device
        if asked == "auto" and self._resources.get("GPU", 0) >= 1:
            return "cuda"
        return plan.setup.device

    def _uses_gpu(self, plan: AuditPlan) -> bool:
        return self.device(plan).startswith("cuda")

    def split(self, plan: AuditPlan) -> list[SweepGroup]:
        per = "GPU" if self._uses_gpu(plan) else "CPU"
        n = self.groups if self.groups is not None else max(1, int(self._resources.get(per, 1)))
        return groups_of(plan.members, n)

    def run(
        self,
        plan: AuditPlan,
        groups: Sequence[SweepGroup],
        *,
        stop: StopRequest,
        notify: Callable[[str], None],
        started: float,
    ) -> list[GroupOutcome | LostGroup]:
        ray = _ray()
        gpu = self._uses_gpu(plan)
        cpus = 1 if gpu else max(1, int(self._resources.get("CPU", 1)) // len(groups))
        remote_plan, _ = portable(plan, cluster=self.address is not None)
        remote_plan = replace(remote_plan, setup=replace(remote_plan.setup, device=self.device(plan)))
        task = ray.remote(_group_task).options(
            num_cpus=cpus, num_gpus=1 if gpu else 0, max_retries=self.retries
        )
        flag = ray.remote(_Flag).options(num_cpus=0).remote()
        plan_ref = ray.put(remote_plan)
        already = time.perf_counter() - started
        notify(
            f"training {len(plan.members)} models in {len(groups)} groups on {self.described}, "
            f"{_count(1, 'GPU') if gpu else _count(cpus, 'CPU')} each"
        )
        refs = [task.remote(plan_ref, g, flag, already, cpus) for g in groups]
        try:
            self._wait(refs, stop, flag)
            return [self._outcome(ref, g, notify) for ref, g in zip(refs, groups)]
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)

    def _wait(self, refs: list[Any], stop: StopRequest, flag: Any) -> None:
        """Until every task has returned, passing on a stop request; tasks still running
        :data:`CANCEL_AFTER` seconds after it are cancelled (and said lost)."""
        ray = _ray()
        pending, asked = list(refs), None
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
            if stop() and asked is None:
                flag.request.remote(stop.reason or "stop")
                asked = time.monotonic()
            if asked is not None and time.monotonic() - asked > CANCEL_AFTER:
                for ref in pending:
                    ray.cancel(ref, force=True)
                return

    def _outcome(
        self, ref: Any, group: SweepGroup, notify: Callable[[str], None]
    ) -> GroupOutcome | LostGroup:
        """The group's outcome; a worker that died on every attempt (or a cancelled task)
        is a :class:`LostGroup`; an error the task raised is raised here, as it would be locally."""
        ray = _ray()
        try:
            outcome, notices = ray.get(ref, timeout=CANCEL_AFTER)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause  # the task's own error (a VaelossError, or a bug), raised as locally
            raise (cause if isinstance(cause, BaseException) else exc) from None
        except (ray.exceptions.RayError, TimeoutError) as exc:
            first = first_line(exc, type(exc).__name__)
            attempts = 1 + self.retries
            why = (
                "cancelled after the stop request"
                if isinstance(exc, ray.exceptions.TaskCancelledError)
                else f"its worker failed on all {attempts} attempts ({type(exc).__name__}: {first})"
            )
            return LostGroup(group, why, "Ray")
        for notice in notices:
            notify(notice)
        return outcome
