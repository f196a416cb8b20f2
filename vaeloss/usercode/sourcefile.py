"""A user's file as Python source: a ``.py`` file as it is, or a notebook's code cells.

A notebook (``.ipynb``) becomes one Python text: its code cells in order, with IPython magics
(``%...``, ``%%...`` cells) and shell lines (``!...``) replaced by ``pass``, and cells that do
not parse (a course's exercise cell ``self.fc_mu = # TODO``) left blank and listed in
:attr:`SourceFile.broken`, so that every line keeps its place and the rest can be checked.
:meth:`SourceFile.where` turns a line of that text back into "cell N, line M".
Nothing here executes the file.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

from vaeloss.errors import UserCodeError

__all__ = ["SourceFile", "read_source_file"]


@dataclass(frozen=True)
class SourceFile:
    """The Python text of a user's file and where each of its lines came from.

    Attributes:
        path: the file.
        text: Python source (a notebook's code cells joined).
        cells: for a notebook, per line of ``text`` (1-based), its (cell, line) (both 1-based);
            empty for a ``.py`` file.
        broken: for a notebook, its cells that do not parse: (their first line in ``text``,
            that line as written, the parser's message).
    """

    path: Path
    text: str
    cells: tuple[tuple[int, int], ...] = field(default=())
    broken: tuple[tuple[int, str, str], ...] = field(default=())

    @property
    def is_notebook(self) -> bool:
        return bool(self.cells)

    def where(self, line: int | None) -> str | None:
        """Where a line of ``text`` is, for people: "line 12" or "cell 3, line 4".

        >>> SourceFile(Path("a.ipynb"), "x = 1\\ny = 2\\n", ((1, 1), (2, 1))).where(2)
        'cell 2, line 1'
        """
        if line is None:
            return None
        if not self.cells or not 1 <= line <= len(self.cells):
            return f"line {line}"
        cell, inner = self.cells[line - 1]
        return f"cell {cell}, line {inner}"


def _magic(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith(("%", "!")) or stripped.startswith("get_ipython(")


def _notebook(path: Path, raw: str) -> SourceFile:
    try:
        nb = json.loads(raw)
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserCodeError(
            f"Expected a Jupyter notebook (JSON with 'cells') but could not read path={str(path)!r}. "
            f"Try 'jupyter nbconvert --to script {path.name}' and check the .py file."
        ) from None
    lines: list[str] = []
    where: list[tuple[int, int]] = []
    broken: list[tuple[int, str, str]] = []
    for number, cell in enumerate(cells, start=1):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        cell_lines = text.splitlines()
        python = _cell_python(cell_lines)
        try:
            ast.parse("\n".join(python))
        except SyntaxError as exc:
            first = next((line.strip() for line in cell_lines if line.strip()), "")
            broken.append((len(lines) + 1, first, f"{exc.msg} at its line {exc.lineno}"))
            python = [""] * len(python)
        lines += python
        where += [(number, inner) for inner in range(1, len(cell_lines) + 1)]
        lines.append("")  # cells are separate blocks
        where.append((number, len(cell_lines) + 1))
    return SourceFile(path, "\n".join(lines) + "\n", tuple(where), tuple(broken))


def _cell_python(cell_lines: list[str]) -> list[str]:
    """A code cell's lines as Python: magics and shell lines made ``pass``, a ``%%`` cell blank."""
    if cell_lines and cell_lines[0].lstrip().startswith("%%"):
        return [""] * len(cell_lines)
    return [line[: len(line) - len(line.lstrip())] + "pass" if _magic(line) else line for line in cell_lines]


def read_source_file(path: Path) -> SourceFile:
    """Read ``path`` (a ``.py`` file or an ``.ipynb`` notebook) as Python text.

    Raises:
        UserCodeError: it does not exist, is a folder, or is not text.
    """
    if not path.exists():
        raise UserCodeError(
            f"Expected a Python file or notebook but got path={str(path)!r}, which does not exist. "
            f"Try the path of an existing .py file or .ipynb notebook, from {Path.cwd()}."
        )
    if path.is_dir():
        raise UserCodeError(
            f"Expected a Python file but got path={str(path)!r}, a directory. "
            f"Try the file that defines your loss."
        )
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserCodeError(f"Expected a UTF-8 Python file but got path={str(path)!r}.") from None
    if path.suffix == ".ipynb":
        return _notebook(path, raw)
    return SourceFile(path, raw)
