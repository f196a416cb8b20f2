"""The project-wide check's cache: a file's outcome, keyed by its content, the options it was
checked with and the vaeloss version, so that a second run over an unchanged project reads
instead of probing.

The cache is one folder, ``<root>/.vaeloss_cache/``, holding a ``.gitignore`` of ``*`` (git
ignores it without the project's own ``.gitignore`` changing) and a ``CACHEDIR.TAG``; entries
are written atomically (a temporary file renamed). Only outcomes that do not depend on the
moment are kept: checked losses and files without one, never a failure (a time-out on a busy
machine must not stick). The key is the file's own content: a change in a module it imports
is not seen (``--no-cache`` checks everything again).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vaeloss._version import __version__
from vaeloss.jsontypes import JsonObject
from vaeloss.project.outcome import FileOutcome

__all__ = ["CACHE_FOLDER", "Cache"]

CACHE_FOLDER = ".vaeloss_cache"
_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# vaeloss's cache (vaeloss check PATH...)\n"


class Cache:
    """Outcomes by key under ``folder`` (None: no cache, nothing written)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    @staticmethod
    def key(content: bytes, options: JsonObject) -> str:
        """The entry's name: a hash of the vaeloss version, the options and the content."""
        h = hashlib.sha256()
        h.update(__version__.encode())
        h.update(json.dumps(options, sort_keys=True, default=str).encode())
        h.update(content)
        return h.hexdigest()

    def get(self, key: str) -> FileOutcome | None:
        if self.folder is None:
            return None
        try:
            data = json.loads((self.folder / "entries" / f"{key}.json").read_text(encoding="utf-8"))
            return FileOutcome.from_json(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, or written by another version: checked again

    def put(self, key: str, outcome: FileOutcome) -> None:
        if self.folder is None or outcome.status not in ("checked", "no loss"):
            return
        entries = self.folder / "entries"
        try:
            self._create()
            tmp = entries / f".{key}.tmp-{os.getpid()}"
            tmp.write_text(json.dumps(outcome.to_json(), allow_nan=False), encoding="utf-8")
            os.replace(tmp, entries / f"{key}.json")
        except (OSError, ValueError):
            pass  # a cache that cannot be written only costs time

    def _create(self) -> None:
        assert self.folder is not None
        (self.folder / "entries").mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", "*\n"), ("CACHEDIR.TAG", _TAG)):
            path = self.folder / name
            if not path.exists():
                path.write_text(text, encoding="utf-8")
