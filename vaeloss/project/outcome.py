"""What a project-wide check found in each file: a typed row of the summary, kept in the cache
and read back from it (``to_json``/``from_json``), and the exit status of them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vaeloss.check.result import Finding
from vaeloss.exit_codes import ExitCode
from vaeloss.jsontypes import JsonObject

__all__ = ["FileOutcome", "Status", "exit_status", "worst_finding"]

Status = Literal["checked", "no loss", "not read", "failed"]
"""``checked``: a loss was checked (its findings may be errors); ``no loss``: the file holds no
VAE loss (no candidate in its syntax, or check found none); ``not read``: a binary or huge file;
``failed``: it may hold a loss but could not be checked (the reason says why)."""

_SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class FileOutcome:
    """One file of the project, as the summary shows it.

    Attributes:
        path: relative to the project's root (``/`` separated).
        status: see :data:`Status`; reason: why, for every status but ``checked``.
        line: the loss's first line (in a notebook, of the cells' joined text); where: for
            people ("line 12", "cell 3, line 4").
        target: the loss checked (``loss_function``, ``VAE.training_step``, or words for a loss
            computed inline); framework, likelihood; beta: the effective beta as a formula in
            B, D, k (or its value at the check's sizes when no formula holds).
        findings: those left after ``# vaeloss: ignore[...]`` and the configuration's ignores;
            ignored: how many were dropped so.
        report: the single-target ``--json`` object of the check.
        exit_code: 0, 1 (an error finding) or 2 (failed, or unreadable).
        cached: read from the cache, not checked in this run.
    """

    path: str
    status: Status
    exit_code: int
    reason: str | None = None
    line: int | None = None
    where: str | None = None
    target: str | None = None
    framework: str | None = None
    likelihood: str | None = None
    beta: str | None = None
    findings: tuple[Finding, ...] = ()
    ignored: int = 0
    report: JsonObject | None = field(default=None, repr=False)
    cached: bool = False

    def to_json(self) -> JsonObject:
        return {
            "path": self.path,
            "status": self.status,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "line": self.line,
            "where": self.where,
            "target": self.target,
            "framework": self.framework,
            "likelihood": self.likelihood,
            "effective_beta": self.beta,
            "findings": [f.to_json() for f in self.findings],
            "ignored_findings": self.ignored,
            "report": self.report,
            "cached": self.cached,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileOutcome:
        """The outcome :meth:`to_json` wrote (the cache's entries)."""
        return cls(
            path=data["path"],
            status=data["status"],
            exit_code=int(data["exit_code"]),
            reason=data["reason"],
            line=data["line"],
            where=data["where"],
            target=data["target"],
            framework=data["framework"],
            likelihood=data["likelihood"],
            beta=data["effective_beta"],
            findings=tuple(Finding.from_json(f) for f in data["findings"]),
            ignored=int(data["ignored_findings"]),
            report=data["report"],
            cached=bool(data["cached"]),
        )


def worst_finding(outcome: FileOutcome) -> Finding | None:
    """The finding the summary's row shows: the most severe, the first of those.

    >>> found = (Finding("x", "warning", "w"), Finding("y", "error", "e"))
    >>> worst_finding(FileOutcome("a.py", "checked", 1, findings=found)).code
    'y'
    """
    if not outcome.findings:
        return None
    return min(outcome.findings, key=lambda f: _SEVERITY_ORDER[f.severity])


def exit_status(outcomes: list[FileOutcome]) -> ExitCode:
    """The worst of all: 2 when a file could not be checked, else 1 for an error finding, else 0.

    >>> int(exit_status([FileOutcome("a.py", "checked", 1), FileOutcome("b.py", "failed", 2)]))
    2
    """
    worst = max((o.exit_code for o in outcomes), default=0)
    return ExitCode(worst)
