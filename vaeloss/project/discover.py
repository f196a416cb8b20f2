"""The files of a project that ``vaeloss check PATH...`` reads: every ``.py`` and ``.ipynb``
under the paths, as git sees the project when it is a repository (tracked files and untracked
ones ``.gitignore`` does not ignore), else by walking the folders; never a virtual environment
(a folder with ``pyvenv.cfg``), ``site-packages``, or a build, cache or tool folder. Nothing is
followed through a symbolic link to a folder, so a link loop ends nowhere. A file that cannot
be read as a source file is kept with its reason (:class:`Unreadable`), never dropped silently.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vaeloss.errors import InvalidArgumentError

__all__ = ["SKIPPED_FOLDERS", "Discovery", "Unreadable", "discover", "project_root"]

SUFFIXES = (".py", ".ipynb")
MAX_BYTES = {".py": 2_000_000, ".ipynb": 20_000_000}
"""Files above these sizes are not read (generated code, notebooks full of outputs)."""
SKIPPED_FOLDERS = frozenset(
    {
        ".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        ".tox", ".nox", ".eggs", "node_modules", "site-packages", "dist-packages", "build",
        "dist", ".ipynb_checkpoints", ".vaeloss_cache", ".venv", "venv", "env",
    }
)  # fmt: skip
"""Folders never entered, besides any holding ``pyvenv.cfg`` (a virtual environment)."""


@dataclass(frozen=True)
class Unreadable:
    """A file of the project that is not checked, and why (in words)."""

    path: Path
    reason: str
    fatal: bool  # it may hold a loss and could not be read (exit 2); else only listed


@dataclass(frozen=True)
class Discovery:
    """The files to read (sorted, each once) and those that cannot be."""

    files: tuple[Path, ...]
    unreadable: tuple[Unreadable, ...]


def _git_root(folder: Path) -> Path | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def project_root(paths: list[Path]) -> Path:
    """The git repository holding the first path, else its folder (the first path itself when
    it is one): where the configuration and the cache are."""
    first = paths[0].resolve()
    folder = first if first.is_dir() else first.parent
    return _git_root(folder) or folder


def _git_files(folder: Path) -> list[Path] | None:
    """The files git lists under ``folder`` (tracked, and untracked but not ignored)."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
            cwd=folder, capture_output=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    names = done.stdout.decode("utf-8", "surrogateescape").split("\0")
    # a tracked file deleted from the working tree is listed too: it is not part of the project now
    return [folder / n for n in names if n and os.path.lexists(folder / n)]


def _skipped_part(path: Path, base: Path) -> bool:
    parts = path.relative_to(base).parts[:-1]
    here = base
    for part in parts:
        here = here / part
        if part in SKIPPED_FOLDERS or part.endswith(".egg-info") or (here / "pyvenv.cfg").exists():
            return True
    return False


def _walk(folder: Path) -> list[Path]:
    out: list[Path] = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIPPED_FOLDERS
            and not d.endswith(".egg-info")
            and not (Path(top) / d / "pyvenv.cfg").exists()
        )
        out += [Path(top) / f for f in files]
    return out


def _unreadable(path: Path) -> Unreadable | None:
    """Why ``path`` cannot be read as a source file, or None when it can."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError as exc:
        return Unreadable(path, f"cannot be read: {exc.strerror or exc}", fatal=True)
    limit = MAX_BYTES[path.suffix]
    if size > limit:
        return Unreadable(path, f"larger than {limit // 1_000_000} MB ({size / 1e6:.1f} MB): not read", False)
    if b"\0" in head:
        return Unreadable(path, "a binary file, not Python source", fatal=False)
    return None


def _excluded(path: Path, root: Path, exclude: tuple[str, ...]) -> bool:
    try:
        rel = path.resolve().relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    return any(fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(path.name, pattern) for pattern in exclude)


def _files_of(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    listed = _git_files(path) if _git_root(path) is not None else None
    files = listed if listed is not None else _walk(path)
    return [f for f in files if not _skipped_part(f, path)]


def discover(paths: list[Path], root: Path, exclude: tuple[str, ...] = ()) -> Discovery:
    """The ``.py`` and ``.ipynb`` files under ``paths`` (files named directly are taken as
    they are), less those matching an ``exclude`` glob (relative to ``root``, or a file name).

    Raises:
        InvalidArgumentError: a path does not exist.
    """
    found: dict[Path, None] = {}
    unreadable: list[Unreadable] = []
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise InvalidArgumentError(
                f"Expected a file or folder to check but got path={str(path)!r}, which does not exist. "
                f"Try vaeloss check . (the whole project)."
            )
        for f in _files_of(path):
            if f.suffix not in SUFFIXES or _excluded(f, root, exclude):
                continue
            problem = _unreadable(f)
            if problem is not None:
                unreadable.append(problem)
            else:
                found.setdefault(Path(os.path.normpath(f)), None)
    return Discovery(tuple(sorted(found)), tuple(unreadable))
