"""What the checked code may do in the worker: read, compute, print; not write files, start
processes or open network connections (a Python audit hook, PEP 578).

Loading a training script must not download data sets, save checkpoints or images, or leave
``__pycache__`` folders in the user's project. Blocked operations raise
:class:`SandboxError` (a ``PermissionError``) inside the user's code, where the loader records
them as the reason a statement was skipped. Writes under the worker's private temporary
folder (its ``TMPDIR``) stay allowed, for libraries that need scratch files.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["SandboxError", "enforced", "install"]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {
    "os.mkdir",
    "os.rename",
    "os.replace",
    "os.remove",
    "os.rmdir",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.utime",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.copytree",
    "shutil.move",
    "shutil.make_archive",
}
_PROCESS_EVENTS = {
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "pty.spawn",
}
_NETWORK_EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"}


class SandboxError(PermissionError):
    """An operation the checked code may not do (write a file, start a process, use the network)."""


class _State:
    active = False
    installed = False
    writable: tuple[str, ...] = ()


def _path(value: Any) -> str | None:
    if isinstance(value, int):
        return None  # a file descriptor already open
    try:
        return os.path.abspath(os.fsdecode(value))
    except TypeError:
        return None


def _allowed(path: str) -> bool:
    return path == os.devnull or any(path == w or path.startswith(w + os.sep) for w in _State.writable)


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _State.active:
        return
    if event == "open":
        path = _path(args[0])
        if path is not None and _writes(
            args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else None
        ):
            if not _allowed(path):
                raise SandboxError(f"vaeloss check does not let the checked code write files (open {path!r})")
    elif event in _PATH_EVENTS:
        for arg in args[:2]:
            path = _path(arg)
            if path is not None and not _allowed(path):
                raise SandboxError(
                    f"vaeloss check does not let the checked code change files ({event} {path!r})"
                )
    elif event in _PROCESS_EVENTS:
        raise SandboxError(f"vaeloss check does not let the checked code start processes ({event})")
    elif event in _NETWORK_EVENTS:
        raise SandboxError(f"vaeloss check does not let the checked code use the network ({event})")


def install(writable: list[Path]) -> None:
    """Install the audit hook (once per process; it cannot be removed) and set the folders the
    checked code may write to. The hook does nothing outside :func:`enforced`.

    TensorBoard writes its event files through TensorFlow's C++ file system when TensorFlow is
    installed, which no audit hook sees (``SummaryWriter("runs")`` at a file's top level wrote
    into the user's project): TensorBoard is told to use its pure-Python file system instead
    (its documented ``tensorboard.compat.notf`` switch), whose writes the hook sees."""
    _State.writable = tuple(os.path.abspath(p) for p in writable)
    sys.dont_write_bytecode = True
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    if not _State.installed:
        sys.addaudithook(_hook)
        _State.installed = True


@contextmanager
def enforced() -> Iterator[None]:
    """Enforce the sandbox while the checked code runs."""
    before = _State.active
    _State.active = True
    try:
        yield
    finally:
        _State.active = before
