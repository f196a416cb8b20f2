"""``vaeloss check PATH...``: every file of a project that may hold a VAE loss, checked.

The files (:func:`~vaeloss.project.discover.discover`) are read statically first
(:func:`~vaeloss.project.prefilter.vae_units`): only those computing both terms somewhere are
checked, each by :func:`~vaeloss.check.runner.check_loss` in its own sandboxed worker process,
``jobs`` at once. A file that cannot be checked is one outcome with its reason; it never stops
the others. Findings on a line marked ``# vaeloss: ignore[code, ...]``, and codes the
configuration ignores, are dropped (and counted).
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from vaeloss.check.result import CheckReport
from vaeloss.check.runner import DEFAULT_BATCH_SIZE, DEFAULT_LATENT_DIM, DEFAULT_TIMEOUT
from vaeloss.check.source import read_static
from vaeloss.errors import InvalidArgumentError, NoLossError, VaelossError
from vaeloss.exit_codes import ExitCode
from vaeloss.jsontypes import JsonObject
from vaeloss.project.cache import CACHE_FOLDER, Cache
from vaeloss.project.config import ProjectConfig, read_config
from vaeloss.project.discover import discover, project_root
from vaeloss.project.outcome import FileOutcome, exit_status
from vaeloss.project.prefilter import vae_units
from vaeloss.usercode.sourcefile import SourceFile, read_source_file

__all__ = ["ProjectOptions", "ProjectResult", "check_project", "default_jobs"]

_IGNORE = re.compile(r"#\s*vaeloss:\s*ignore\[([^\]]*)\]")
_DEFAULT_SIZES = {"B": DEFAULT_BATCH_SIZE, "k": DEFAULT_LATENT_DIM}


def default_jobs() -> int:
    """Checks at once by default: the CPU count, at most 4 (each is a process importing torch)."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class ProjectOptions:
    """How to check: sizes given on the command line (they override the configuration's),
    ``timeout`` per file, ``jobs`` at once, and whether to use the cache."""

    paths: tuple[Path, ...]
    sizes: dict[str, int] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    timeout: float | None = None
    exec_module: bool = False
    jobs: int = 1
    cache: bool = True


@dataclass(frozen=True)
class ProjectResult:
    """Every file's outcome (sorted by path) and the project's root."""

    root: Path
    outcomes: tuple[FileOutcome, ...]

    @property
    def exit_code(self) -> ExitCode:
        return exit_status(list(self.outcomes))


@dataclass(frozen=True)
class FileCheck:
    """What one file is checked with: :func:`~vaeloss.check.runner.check_loss`'s arguments
    (its ``name`` is the loss's, None: the one check picks)."""

    name: str | None
    batch_size: int
    data_dim: int | None
    latent_dim: int
    input_shape: tuple[int, ...] | None
    args: dict[str, object]
    init: dict[str, object]
    expect_beta: float | None
    exec_module: bool

    def key_data(self) -> JsonObject:
        data: JsonObject = json.loads(json.dumps(asdict(self), default=repr))
        return data


@dataclass(frozen=True)
class _Job:
    path: Path
    rel: str
    source: SourceFile
    key: str
    check: FileCheck


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _file_check(rel: str, config: ProjectConfig, opts: ProjectOptions) -> FileCheck:
    target = config.target(rel)
    sizes = {**_DEFAULT_SIZES, **config.sizes, **opts.sizes}
    return FileCheck(
        name=target.name,
        batch_size=sizes["B"],
        data_dim=sizes.get("D"),
        latent_dim=sizes["k"],
        input_shape=opts.input_shape or config.input_shape,
        args=dict(target.args),
        init=dict(target.init),
        expect_beta=target.expect_beta,
        exec_module=opts.exec_module,
    )


def _located(report: CheckReport, source: SourceFile) -> tuple[int | None, str]:
    """The loss's first line and its name for people (words for a loss computed inline)."""
    static = read_static(source)
    if report.function in static.inline:
        return static.inline[report.function].lines[0], report.described
    return next((c.line for c in static.candidates if c.name == report.function), None), report.function


def _checked(job: _Job, report: CheckReport) -> FileOutcome:
    line, target = _located(report, job.source)
    obj = report.objective
    beta = obj.effective_beta_formula if obj is not None else None
    if beta is None and report.effective_beta is not None:
        beta = f"{report.effective_beta:.4g} (at these sizes)"
    return FileOutcome(
        path=job.rel,
        status="checked",
        exit_code=report.exit_code,
        line=line,
        where=job.source.where(line),
        target=target,
        framework=report.framework,
        likelihood=report.likelihood,
        beta=beta,
        findings=tuple(report.findings),
        report=report.to_json(),
    )


_VALUE_FLAG = re.compile(r"--(arg|init) ([A-Za-z_][A-Za-z0-9_]*)=VALUE")


def _relative_paths(text: str, job: _Job) -> str:
    """The message with the file's path as the summary shows it (relative to the root)."""
    for shown in {str(job.path.resolve()), str(job.path.absolute())}:
        text = text.replace(shown, job.rel)
    return text


def _with_target_hint(reason: str, rel: str) -> str:
    """A failure that asks for ``--arg NAME=VALUE`` / ``--init NAME=VALUE`` gets, as its second
    line, where a project gives them: its ``[tool.vaeloss.targets."FILE"]`` table.

    >>> print(_with_target_hint("Expected c. Try --arg c=VALUE.", "a/loss.py"))
    Expected c. Try --arg c=VALUE.
    Try in pyproject.toml: [tool.vaeloss.targets."a/loss.py"] with args = { c = VALUE }
    """
    asked: dict[str, list[str]] = {}
    for kind, name in _VALUE_FLAG.findall(reason):
        names = asked.setdefault("args" if kind == "arg" else "init", [])
        if name not in names:
            names.append(name)
    if not asked:
        return reason
    tables = " and ".join(
        f"{key} = {{ {', '.join(f'{n} = VALUE' for n in names)} }}" for key, names in asked.items()
    )
    first, _, rest = reason.partition("\n")
    hint = f'Try in pyproject.toml: [tool.vaeloss.targets."{rel}"] with {tables}'
    return "\n".join(part for part in (first, hint, rest) if part)


def _check_one(job: _Job, timeout: float) -> FileOutcome:
    """Check one file in its worker; every failure is an outcome, never an exception."""
    from vaeloss.check.runner import check_loss

    c = job.check
    try:
        report = check_loss(
            str(job.path) + (f":{c.name}" if c.name else ""),
            batch_size=c.batch_size,
            data_dim=c.data_dim,
            latent_dim=c.latent_dim,
            input_shape=c.input_shape,
            args=dict(c.args),
            init=dict(c.init),
            expect_beta=c.expect_beta,
            timeout=timeout,
            exec_module=c.exec_module,
        )
    except NoLossError as exc:
        return FileOutcome(job.rel, "no loss", 0, reason=_relative_paths(str(exc), job))
    except VaelossError as exc:
        reason = _with_target_hint(_relative_paths(str(exc), job), job.rel)
        return FileOutcome(job.rel, "failed", int(ExitCode.USAGE_ERROR), reason=reason)
    except Exception as exc:  # a bug of vaeloss: named, and the other files still checked
        reason = f"a bug in vaeloss, please report it: {type(exc).__name__}: {exc}"
        return FileOutcome(job.rel, "failed", int(ExitCode.USAGE_ERROR), reason=reason)
    return _checked(job, report)


def _ignored_codes(lines: list[str], line: int | None) -> set[str] | None:
    """The codes ``# vaeloss: ignore[...]`` names on ``line`` (None when it has no such mark)."""
    if line is None or not 1 <= line <= len(lines):
        return None
    found = _IGNORE.search(lines[line - 1])
    return None if found is None else {c.strip() for c in found.group(1).split(",") if c.strip()}


def _apply_ignores(outcome: FileOutcome, text: str, config: ProjectConfig) -> FileOutcome:
    kept, lines = [], text.splitlines()
    for f in outcome.findings:
        marked = _ignored_codes(lines, f.line)
        if f.code in config.ignore or (marked is not None and f.code in marked):
            continue
        kept.append(f)
    if len(kept) == len(outcome.findings):
        return outcome
    code = outcome.exit_code if outcome.status != "checked" else int(any(f.severity == "error" for f in kept))
    return replace(outcome, findings=tuple(kept), ignored=len(outcome.findings) - len(kept), exit_code=code)


def _static(path: Path, rel: str, source: SourceFile) -> FileOutcome | None:
    """The outcome known without running anything (no candidate, or a file that does not
    parse), or None when the file is to be checked."""
    try:
        tree = ast.parse(source.text, filename=str(path))
    except SyntaxError as exc:
        where = source.where(exc.lineno) or "an unknown line"
        reason = f"a syntax error at {where}: {exc.msg} (exclude it in [tool.vaeloss] if it is not Python 3)"
        return FileOutcome(rel, "failed", int(ExitCode.USAGE_ERROR), reason=reason)
    if not vae_units(tree):
        return FileOutcome(
            rel, "no loss", 0, reason="no function computes both a KL-like and a reconstruction term"
        )
    return None


def _prepare(path: Path, rel: str, config: ProjectConfig, opts: ProjectOptions) -> _Job | FileOutcome:
    try:
        content = path.read_bytes()
        source = read_source_file(path)
    except (OSError, VaelossError) as exc:
        return FileOutcome(rel, "failed", int(ExitCode.USAGE_ERROR), reason=f"cannot be read: {exc}")
    check = _file_check(rel, config, opts)
    return _Job(path, rel, source, Cache.key(content, {**check.key_data(), "path": rel}), check)


def _known(job: _Job | FileOutcome, cache: Cache) -> FileOutcome | None:
    """The outcome without a worker: unreadable, cached, or told by the file's syntax."""
    if isinstance(job, FileOutcome):
        return job
    cached = cache.get(job.key)
    if cached is not None:
        return replace(cached, cached=True)
    static = _static(job.path, job.rel, job.source)
    if static is not None:
        cache.put(job.key, static)
    return static


def check_project(
    opts: ProjectOptions,
    on_done: Callable[[FileOutcome], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ProjectResult:
    """Check every file under ``opts.paths`` (see the module); ``on_start`` is told how many
    files there are, ``on_done`` of each file as its outcome is known (a progress bar).

    Raises:
        InvalidArgumentError: a path does not exist, or the configuration is invalid.
    """
    root = project_root(list(opts.paths))
    config = read_config(root)
    found = discover(list(opts.paths), root, config.exclude)
    if not found.files and not found.unreadable:  # a mistyped or empty folder must not pass CI
        shown = " ".join(str(p) for p in opts.paths)
        raise InvalidArgumentError(
            f"Expected Python files or notebooks to check but got none under paths={shown!r} "
            f"(files git ignores and [tool.vaeloss] exclude are left out). Try the folder that holds "
            f"your code, e.g. 'vaeloss check .' at the project's root."
        )
    if on_start is not None:
        on_start(len(found.files) + len(found.unreadable))
    cache = Cache(root / CACHE_FOLDER if opts.cache else None)
    timeout = opts.timeout or config.timeout or DEFAULT_TIMEOUT

    def finish(outcome: FileOutcome, job: _Job | None) -> FileOutcome:
        if job is not None:
            outcome = _apply_ignores(outcome, job.source.text, config)
        if on_done is not None:
            on_done(outcome)
        return outcome

    def run(job: _Job) -> FileOutcome:
        outcome = _check_one(job, timeout)
        cache.put(job.key, outcome)
        return finish(outcome, job)

    done = [
        finish(
            FileOutcome(_relative(u.path, root), "failed" if u.fatal else "not read", 2 * u.fatal, u.reason),
            None,
        )
        for u in found.unreadable
    ]
    todo: list[_Job] = []
    for path in found.files:
        job = _prepare(path, _relative(path, root), config, opts)
        known = _known(job, cache)
        if known is not None:
            done.append(finish(known, job if isinstance(job, _Job) else None))
        elif isinstance(job, _Job):
            todo.append(job)
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        done += list(pool.map(run, todo))
    return ProjectResult(root, tuple(sorted(done, key=lambda o: o.path)))
