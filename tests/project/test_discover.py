"""Which files of a project are read (tests of project/discover.py): git's view in a
repository, the same skips without git, link loops, unreadable, binary and huge files."""

import os
import subprocess

import pytest

from vaeloss.errors import InvalidArgumentError
from vaeloss.project.discover import discover, project_root


def _layout(root):
    files = {
        "pkg/__init__.py": "",
        "pkg/loss.py": "x = 1\n",
        "notebook.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
        "README.md": "# not python\n",
        "env/pyvenv.cfg": "home = /usr\n",
        "env/lib/site.py": "x = 1\n",
        "vendor/site-packages/dep.py": "x = 1\n",
        "build/lib/pkg/loss.py": "x = 1\n",
        "pkg/__pycache__/loss.py": "x = 1\n",
        "my.egg-info/x.py": "x = 1\n",
        "scratch/ignored.py": "x = 1\n",
        "old/legacy.py": "x = 1\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / ".gitignore").write_text("scratch/\n")
    return root


def _names(found, root):
    return [str(p.relative_to(root)) for p in found.files]


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.mark.parametrize("repository", [True, False], ids=["git", "plain-folder"])
def test_python_files_less_environments_builds_and_caches(tmp_path, repository):
    root = _layout(tmp_path)
    if repository:
        _git(root, "init", "-q")
        _git(root, "add", "pkg", "README.md", ".gitignore")  # the rest is untracked
    found = discover([root], root, exclude=("old/*",))
    expected = ["notebook.ipynb", "pkg/__init__.py", "pkg/loss.py"]
    if not repository:
        expected.append("scratch/ignored.py")  # only git reads .gitignore
    assert _names(found, root) == expected
    assert found.unreadable == ()


def test_a_symlink_loop_ends_and_a_broken_link_is_said(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "loss.py").write_text("x = 1\n")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    os.symlink(tmp_path / "missing.py", tmp_path / "dangling.py")
    found = discover([tmp_path], tmp_path)
    assert _names(found, tmp_path) == ["a/loss.py"]
    (bad,) = found.unreadable
    assert (
        bad.path.name == "dangling.py" and bad.reason.startswith("cannot be read: No such file") and bad.fatal
    )


def test_binary_and_huge_files_are_listed_not_read(tmp_path, monkeypatch):
    import vaeloss.project.discover as discover_module

    (tmp_path / "blob.py").write_bytes(b"\x00\x01\x02" * 10)
    (tmp_path / "generated.py").write_text("x = 1\n" * 100)
    monkeypatch.setitem(discover_module.MAX_BYTES, ".py", 500)
    found = discover([tmp_path], tmp_path)
    reasons = {u.path.name: (u.reason, u.fatal) for u in found.unreadable}
    assert reasons == {
        "blob.py": ("a binary file, not Python source", False),
        "generated.py": ("larger than 0 MB (0.0 MB): not read", False),
    }


def test_a_tracked_file_deleted_from_the_working_tree_is_not_listed(tmp_path):
    (tmp_path / "kept.py").write_text("x = 1\n")
    (tmp_path / "gone.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    (tmp_path / "gone.py").unlink()
    found = discover([tmp_path], tmp_path)
    assert _names(found, tmp_path) == ["kept.py"] and found.unreadable == ()


def test_files_named_directly_are_taken_once(tmp_path):
    (tmp_path / "loss.py").write_text("x = 1\n")
    found = discover([tmp_path / "loss.py", tmp_path, tmp_path / "loss.py"], tmp_path)
    assert _names(found, tmp_path) == ["loss.py"]


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(
        InvalidArgumentError, match=r"but got path='.*nope', which does not exist\. Try vaeloss check \."
    ):
        discover([tmp_path / "nope"], tmp_path)


def test_the_root_is_the_repository_or_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    assert project_root([tmp_path / "sub"]) == (tmp_path / "sub").resolve()
    _git(tmp_path, "init", "-q")
    assert project_root([tmp_path / "sub"]) == tmp_path.resolve()
