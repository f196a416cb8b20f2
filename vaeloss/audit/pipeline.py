"""An audit in two steps: :func:`~vaeloss.audit.plan.plan_audit` validates every input and
decides what will be done (:mod:`vaeloss.audit.plan`), without training anything;
:func:`~vaeloss.audit.execute.execute` then trains the sweep, evaluates it, judges each model
and recommends a beta (:mod:`vaeloss.audit.execute`). :func:`run_audit` does both."""

from __future__ import annotations

from vaeloss.audit.execute import AuditRun, LocalExecutor, execute
from vaeloss.audit.plan import AUTO_GRID, AuditOptions, AuditPlan, plan_audit

__all__ = [
    "AUTO_GRID",
    "AuditOptions",
    "AuditPlan",
    "AuditRun",
    "LocalExecutor",
    "execute",
    "plan_audit",
    "run_audit",
]


def run_audit(opts: AuditOptions) -> AuditRun:
    """:func:`plan_audit` then :func:`execute`, in this process."""
    return execute(plan_audit(opts))
