"""The project-wide check's output, as text for people and as what CI reads: JSON, GitHub
Actions workflow commands (and a Markdown step summary), SARIF 2.1.0. Each function returns
text; the command prints it."""

from __future__ import annotations

import json
from pathlib import Path

from vaeloss._version import __version__
from vaeloss.check.findings import CODES, HELP
from vaeloss.check.result import Finding
from vaeloss.jsontypes import JsonObject
from vaeloss.project import FORMATS
from vaeloss.project.outcome import FileOutcome, worst_finding
from vaeloss.project.run import ProjectResult

__all__ = ["FORMATS", "github_annotations", "json_summary", "markdown_summary", "sarif", "text_summary"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _located(o: FileOutcome, line: int | None, where: str | None) -> str:
    """``path:line``, or ``path (cell 3, line 4)`` in a notebook (``where``: that line's place)."""
    if line is None:
        return o.path
    if o.path.endswith(".ipynb"):
        return f"{o.path} ({where})" if where else o.path
    return f"{o.path}:{line}"


def _plural(n: int, one: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``.

    >>> _plural(1, "loss", "losses"), _plural(3, "file")
    ('1 loss', '3 files')
    """
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _counts(result: ProjectResult) -> str:
    by = {
        s: sum(1 for o in result.outcomes if o.status == s)
        for s in ("checked", "failed", "no loss", "not read")
    }
    cached = sum(1 for o in result.outcomes if o.cached)
    parts = [_plural(len(result.outcomes), "file"), f"{_plural(by['checked'], 'loss', 'losses')} checked"]
    parts += [f"{by['failed']} could not be checked"] if by["failed"] else []
    parts += [f"{by['no loss']} without a VAE loss"] if by["no loss"] else []
    parts += [f"{by['not read']} not read"] if by["not read"] else []
    parts += [f"{cached} from the cache"] if cached else []
    return ", ".join(parts)


def _finding_text(f: Finding) -> str:
    return f"{f.severity} [{f.code}] {f.message}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _clip(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _short_reason(o: FileOutcome) -> list[str]:
    """A failure's first line, and the line saying where to give a missing value, if any."""
    first, *rest = (o.reason or "could not be checked").splitlines() or [""]
    return [first, *(line for line in rest[:1] if line.startswith("Try in pyproject.toml"))]


def _reason_lines(o: FileOutcome, most: int = 3) -> list[str]:
    """Why a file could not be checked: its first lines (the rest: ``vaeloss check FILE``)."""
    first, *rest = (o.reason or "could not be checked").splitlines() or [""]
    shown = [f"  {o.path}: {first}", *(f"    {line.strip()}" for line in rest[:most])]
    if len(rest) > most:
        shown.append(f"    ... ({len(rest) - most} more lines: vaeloss check {o.path})")
    return shown


def text_summary(result: ProjectResult) -> str:
    """The table of checked losses, then their findings, then the files that could not be
    checked or read, then the counts."""
    checked = [o for o in result.outcomes if o.status == "checked"]
    lines: list[str] = []
    if checked:
        rows = [["FILE:LINE", "TARGET", "LIKELIHOOD", "EFFECTIVE BETA", "WORST FINDING"]]
        for o in checked:
            worst = worst_finding(o)
            shown = "-" if worst is None else f"{worst.severity} {worst.code}"
            rows.append(
                [
                    _located(o, o.line, o.where),
                    _clip(o.target or "?"),
                    o.likelihood or "?",
                    o.beta or "none",
                    shown,
                ]
            )
        lines += _table(rows)
    found = [(o, f) for o in checked for f in o.findings]
    if found:
        lines += ["", "findings:"]
        lines += [f"  {_located(o, f.line, f.where)}: {_finding_text(f)}" for o, f in found]
    failed = [o for o in result.outcomes if o.status == "failed"]
    if failed:
        lines += ["", "could not be checked:"]
        for o in failed:
            lines += _reason_lines(o)
    unread = [o for o in result.outcomes if o.status == "not read"]
    if unread:
        lines += ["", "not read:"] + [f"  {o.path}: {o.reason}" for o in unread]
    ignored = sum(o.ignored for o in result.outcomes)
    tail = f"; {_plural(ignored, 'finding')} ignored" if ignored else ""
    lines += ["", f"vaeloss check: {_counts(result)}{tail}"]
    return "\n".join(lines).lstrip("\n")


def json_summary(result: ProjectResult) -> str:
    """One object: the root, the exit status, and one object per file (``targets``; a checked
    one holds the single-target ``--json`` object as ``report``)."""
    data: JsonObject = {
        "root": str(result.root),
        "exit_code": int(result.exit_code),
        "summary": _counts(result),
        "targets": [o.to_json() for o in result.outcomes],
    }
    return json.dumps(data, indent=2, allow_nan=False)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, o: FileOutcome, found: Finding | None, title: str, message: str) -> str:
    line = None if found is None else found.line
    props = [f"file={_escape_property(o.path)}"]
    if line is not None and not o.path.endswith(".ipynb"):  # GitHub cannot place a notebook's line
        props.append(f"line={line}")
    elif line is not None:
        message = f"{_located(o, line, found.where if found else None)}: {message}"
    props.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def github_annotations(result: ProjectResult) -> str:
    """One workflow command per finding (``::error file=...,line=...,title=...::message``) and
    per file that could not be checked."""
    out: list[str] = []
    for o in result.outcomes:
        if o.status == "failed":
            out.append(_command("error", o, None, "vaeloss: could not be checked", o.reason or ""))
        for f in o.findings:
            title = f"vaeloss {f.code}"
            out.append(_command(_GITHUB_LEVEL[f.severity], o, f, title, f.message))
    return "\n".join(out)


def markdown_summary(result: ProjectResult) -> str:
    """The step summary GitHub shows (``$GITHUB_STEP_SUMMARY``): the table and the failures."""
    lines = ["## vaeloss check", "", _counts(result), ""]
    checked = [o for o in result.outcomes if o.status == "checked"]
    if checked:
        lines += ["| file | target | likelihood | effective beta | worst finding |", "|---|---|---|---|---|"]
        for o in checked:
            worst = worst_finding(o)
            shown = "" if worst is None else f"{worst.severity} `{worst.code}`"
            cells = [
                f"`{_located(o, o.line, o.where)}`",
                (o.target or "").replace("|", "\\|"),
                o.likelihood or "",
                f"`{o.beta}`" if o.beta else "none",
                shown,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    failed = [o for o in result.outcomes if o.status == "failed"]
    if failed:
        lines += ["", "**Could not be checked:**", ""]
        lines += [f"- `{o.path}`: " + "<br>".join(_short_reason(o)) for o in failed]
    return "\n".join(lines) + "\n"


def _location(o: FileOutcome, line: int | None) -> JsonObject:
    physical: JsonObject = {"artifactLocation": {"uri": Path(o.path).as_posix(), "uriBaseId": "SRCROOT"}}
    if line is not None and not o.path.endswith(".ipynb"):
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def _rules() -> list[JsonObject]:
    return [
        {
            "id": code,
            "name": code,
            "shortDescription": {"text": HELP[code].split(": ")[0].split(". ")[0]},
            "fullDescription": {"text": HELP[code]},
            "help": {"text": HELP[code]},
            "defaultConfiguration": {"level": _SARIF_LEVEL[severity]},
        }
        for code, severity in CODES.items()
    ]


def sarif(result: ProjectResult) -> str:
    """A SARIF 2.1.0 log: one rule per finding code (its help text), one result per finding at
    its location, the files that could not be checked as tool execution notifications."""
    index = {code: i for i, code in enumerate(CODES)}
    results: list[JsonObject] = []
    for o in result.outcomes:
        for f in o.findings:
            text = (
                f.message if f.where is None or not o.path.endswith(".ipynb") else f"{f.where}: {f.message}"
            )
            results.append(
                {
                    "ruleId": f.code,
                    "ruleIndex": index[f.code],
                    "level": _SARIF_LEVEL[f.severity],
                    "message": {"text": text},
                    "locations": [_location(o, f.line)],
                }
            )
    failed = [o for o in result.outcomes if o.status == "failed"]
    notifications: list[JsonObject] = [
        {
            "level": "error",
            "message": {"text": o.reason or "could not be checked"},
            "locations": [_location(o, None)],
        }
        for o in failed
    ]
    run: JsonObject = {
        "tool": {
            "driver": {
                "name": "vaeloss",
                "version": __version__,
                "informationUri": "https://pypi.org/project/vaeloss/",
                "rules": _rules(),
            }
        },
        "originalUriBaseIds": {"SRCROOT": {"uri": result.root.resolve().as_uri() + "/"}},
        "invocations": [{"executionSuccessful": not failed, "toolExecutionNotifications": notifications}],
        "results": results,
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, allow_nan=False)
