"""Where an audit writes: a report folder that vaeloss creates, and nothing else.

Rules (the README states them too):

* the report is written into a temporary folder ``.NAME.tmp-PID`` beside the target, created
  and checked (writable, enough free space) *before* any training, and renamed into place at
  the end;
* an existing ``--out`` is accepted only when it is an empty folder or a vaeloss report, and
  then only with ``overwrite=True``. A vaeloss report is recognised by the marker file
  :data:`MARKER` that lists the files the audit wrote; a report folder holding anything else
  (a file the user added) is not replaced;
* nothing outside the new folder is renamed or removed. Temporary folders of earlier runs
  that crashed are removed only when they carry the marker and their process is gone;
* one audit at a time writes a given ``--out``: a lock file ``.NAME.lock`` beside it (created
  atomically, holding the audit's process id) makes a second audit started on the same
  ``--out`` refuse before training, instead of one report silently replacing the other. The
  lock goes with the report's commit or discard; one left by a crashed audit (its process
  gone) is taken over.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vaeloss._version import __version__
from vaeloss.errors import ReportFolderError

__all__ = ["MARKER", "ReportFolder", "is_report", "prepare_report_folder"]

MARKER = ".vaeloss-report"
_MiB = 1024 * 1024


def _read_marker(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "vaeloss" else None


def is_report(folder: Path) -> bool:
    """Whether ``folder`` is a vaeloss report holding only the files the audit wrote."""
    marker = _read_marker(folder)
    files = None if marker is None else marker.get("files")
    if not isinstance(files, list):
        return False
    ours = {MARKER, *(str(f) for f in files)}
    return all(entry.name in ours for entry in folder.iterdir())


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(parent: Path, name: str) -> None:
    """Remove ``.NAME.tmp-*`` folders of crashed vaeloss runs (marker present, process gone)."""
    for entry in parent.glob(f".{name}.tmp-*"):
        marker = _read_marker(entry) if entry.is_dir() and not entry.is_symlink() else None
        if marker is not None and not _pid_alive(marker.get("pid")):
            shutil.rmtree(entry, ignore_errors=True)


def _listing(folder: Path, limit: int = 4) -> str:
    names = sorted(e.name for e in folder.iterdir())
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}: {shown}"


def _check_target(out: Path, *, overwrite: bool) -> None:
    """Raise :class:`ReportFolderError` unless ``out`` may be written (see the module rules)."""
    shown = str(out)
    if out.is_symlink():
        raise ReportFolderError(
            f"Expected --out to be a new folder but got out={shown!r}, a symbolic link. "
            f"Try a new path such as out={shown + '-report'!r}."
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise ReportFolderError(
            f"Expected --out to be a new folder but got out={shown!r}, an existing file; vaeloss "
            f"never replaces a file it did not write. Try a new path such as out={shown + '-report'!r}."
        )
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise ReportFolderError(
            f"Expected --out to be a folder for the report but got out={shown!r}, the current "
            f"folder or one above it. Try a new path such as out='vaeloss-report'."
        )
    empty = not any(out.iterdir())
    if not empty and not is_report(out):
        raise ReportFolderError(
            f"Expected --out to be a new folder or an earlier vaeloss report but got out={shown!r}, "
            f"an existing folder that is not one ({_listing(out)}); vaeloss never writes into or "
            f"deletes a folder it did not create. Try a new path such as "
            f"out={str(out / 'vaeloss-report')!r}."
        )
    if not overwrite:
        what = "an empty folder" if empty else "an earlier vaeloss report"
        raise ReportFolderError(
            f"Expected --out to be a new folder but got out={shown!r}, {what}. Try --overwrite "
            f"to replace it, or a new path."
        )


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def _take_lock(out: Path) -> Path:
    """Create ``out``'s lock file, or raise :class:`ReportFolderError` naming the audit that holds it."""
    lock = _lock_path(out)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                data = json.loads(lock.read_text())
            except (OSError, ValueError):
                data = {}
            pid = data.get("pid") if isinstance(data, dict) and data.get("tool") == "vaeloss" else None
            if _pid_alive(pid):
                raise ReportFolderError(
                    f"Expected --out to be free but got out={str(out)!r}, which another vaeloss audit "
                    f"(process {pid}) is writing its report to now. Try another --out, or wait for it "
                    f"to finish."
                ) from None
            if pid is None:
                raise ReportFolderError(
                    f"Expected --out to be free but got out={str(out)!r}, with a file {lock.name!r} "
                    f"beside it that vaeloss did not write. Try another --out."
                ) from None
            lock.unlink(missing_ok=True)  # ours, and its audit is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"tool": "vaeloss", "pid": os.getpid()}) + "\n")
        return lock
    raise ReportFolderError(f"Expected to lock out={str(out)!r} but another audit took it first. Try again.")


@dataclass
class ReportFolder:
    """A report being written: ``tmp`` now, renamed to ``target`` by :meth:`commit`."""

    target: Path
    tmp: Path
    lock: Path | None = None

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.unlink(missing_ok=True)
            self.lock = None

    def commit(self, files: list[str]) -> Path:
        """Mark the report complete (listing ``files``) and rename it into place."""
        _write_marker(self.tmp, files=files, complete=True)
        target = self.target
        try:
            if target.exists():
                # accepted by prepare_report_folder with overwrite=True; check again, the user
                # may have put something there since
                _check_target(target, overwrite=True)
                if any(target.iterdir()):
                    old = target.parent / f".{target.name}.old-{os.getpid()}"
                    os.replace(target, old)
                    os.replace(self.tmp, target)
                    shutil.rmtree(old, ignore_errors=True)
                    return target
                target.rmdir()
            os.replace(self.tmp, target)
            return target
        finally:
            self._release()

    def discard(self) -> None:
        """Remove the temporary folder (only it: vaeloss created it) and the lock."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._release()


def _write_marker(folder: Path, *, files: list[str], complete: bool) -> None:
    data = {
        "tool": "vaeloss",
        "version": __version__,
        "pid": os.getpid(),
        "complete": complete,
        "files": files,
    }
    (folder / MARKER).write_text(json.dumps(data, indent=1) + "\n")


def prepare_report_folder(
    out: Path, *, overwrite: bool = False, size_estimate: int = 8 * _MiB
) -> ReportFolder:
    """Check ``out`` and create the temporary report folder beside it, before any training.

    Raises:
        ReportFolderError: ``out`` exists and may not be replaced, its folder cannot be created or
            written, or it has less free space than ``size_estimate`` bytes.
    """
    out = Path(os.path.abspath(Path(out).expanduser()))
    _check_target(out, overwrite=overwrite)
    parent = out.parent
    lock: Path | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        lock = _take_lock(out)
        _clean_stale(parent, out.name)
        tmp = parent / f".{out.name}.tmp-{os.getpid()}"
        if tmp.exists() and _read_marker(tmp) is not None:
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as exc:
        if lock is not None:
            lock.unlink(missing_ok=True)
        raise ReportFolderError(
            f"Expected a folder that can be written for --out but got out={str(out)!r}: "
            f"{exc.strerror or exc} ({exc.filename or parent}). Try --out in a folder you can write to."
        ) from None
    folder = ReportFolder(out, tmp, lock)
    try:
        _write_marker(tmp, files=[], complete=False)
        free = shutil.disk_usage(tmp).free
    except OSError as exc:
        folder.discard()
        raise ReportFolderError(
            f"Expected a folder that can be written for --out but got out={str(out)!r}: "
            f"{exc.strerror or exc}. Try --out in a folder you can write to."
        ) from None
    if free < size_estimate:
        folder.discard()
        raise ReportFolderError(
            f"Expected at least {size_estimate / _MiB:.0f} MiB free for the report but the disk of "
            f"out={str(out)!r} has {free / _MiB:.1f} MiB. Try --out on another disk, or free some space."
        )
    return folder
