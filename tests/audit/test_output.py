"""`vaeloss audit --out`: the audit writes only a folder it creates (tests of audit/output.py)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vaeloss.audit.output import MARKER, is_report, prepare_report_folder
from vaeloss.cli import main
from vaeloss.errors import ReportFolderError

QUICK = ["--epochs", "1", "--sweep", "none", "--iwae-samples", "10"]


def _audit(*args):
    return main(["audit", *QUICK, *args])


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_folder_with_user_files_is_untouched(tmp_path, capsys, monkeypatch):
    """The worst defect of the past: --out "$(pwd)" deleted the folder it was run in."""
    work = tmp_path / "project"
    (work / ".git").mkdir(parents=True)
    (work / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (work / "train.py").write_text("print('mine')\n")
    before = _tree(work)
    monkeypatch.chdir(tmp_path)
    for flags in ([], ["--overwrite"]):
        assert _audit("--out", str(work), *flags) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: Expected --out to be a new folder or an earlier vaeloss report")
        assert "3 entries" not in err and "2 entries: .git, train.py" in err
        assert _tree(work) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_current_folder_is_refused_even_when_empty(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _audit("--out", ".", "--overwrite") == 2
    assert "the current folder or one above it" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_refused_and_kept(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert _audit("--out", str(target), "--overwrite") == 2
    assert "an existing file; vaeloss never replaces a file it did not write" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_empty_folder_needs_overwrite(tmp_path, capsys):
    target = tmp_path / "empty"
    target.mkdir()
    assert _audit("--out", str(target)) == 2
    assert "an empty folder. Try --overwrite" in capsys.readouterr().err
    assert _audit("--out", str(target), "--overwrite") == 0
    assert is_report(target) and (target / "report.md").exists()


@pytest.mark.slow
def test_previous_report_is_replaced_only_with_overwrite(tmp_path, capsys):
    target = tmp_path / "report"
    assert _audit("--out", str(target)) == 0
    marker = json.loads((target / MARKER).read_text())
    assert marker["complete"] is True and "report.md" in marker["files"]
    first = (target / "metrics.json").read_text()
    assert _audit("--out", str(target), "--seed", "3") == 2
    assert "an earlier vaeloss report. Try --overwrite" in capsys.readouterr().err
    assert (target / "metrics.json").read_text() == first
    assert _audit("--out", str(target), "--seed", "3", "--overwrite") == 0
    assert json.loads((target / "metrics.json").read_text())["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no .old or .tmp left
    # a file the user added to the report folder makes it no longer ours to replace
    (target / "my-notes.md").write_text("mine")
    assert _audit("--out", str(target), "--overwrite") == 2
    assert "not one (" in capsys.readouterr().err
    assert (target / "my-notes.md").read_text() == "mine"


def test_folder_that_cannot_be_created_is_exit_2_before_training(tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    import vaeloss.audit.execute as core

    def no_training(*a, **kw):
        raise AssertionError("trained although --out cannot be written")

    monkeypatch.setattr(core, "train", no_training)
    assert _audit("--out", str(tmp_path / "a-file" / "report")) == 2
    err = capsys.readouterr().err
    assert "Expected a folder that can be written for --out" in err and "Try --out in a folder" in err


def _unprivileged() -> list[str] | None:
    """A command prefix under which file permissions apply (root ignores them)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


def test_read_only_folder_is_exit_2_before_training(tmp_path):
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "vaeloss", "audit", "--out", str(ro / "report"), *QUICK],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        ro.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: Expected a folder that can be written for --out")
    assert "Permission denied" in proc.stderr
    assert "epoch" not in proc.stderr  # no training started
    assert list(ro.iterdir()) == []


def test_full_disk_is_exit_2_before_training(tmp_path, capsys, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1024 * 1024))
    assert _audit("--out", str(tmp_path / "r")) == 2
    assert "MiB free for the report but the disk" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_folders_are_cleaned_only_with_the_marker(tmp_path):
    ours = tmp_path / ".r.tmp-999999999"  # no such process
    ours.mkdir()
    (ours / MARKER).write_text(json.dumps({"tool": "vaeloss", "pid": 999999999, "files": []}))
    (ours / "history.csv").write_text("partial")
    theirs = tmp_path / ".r.tmp-123"
    theirs.mkdir()
    (theirs / "precious").write_text("not vaeloss's")
    folder = prepare_report_folder(tmp_path / "r")
    assert not ours.exists()
    assert (theirs / "precious").read_text() == "not vaeloss's"
    folder.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.tmp-123"]


def test_symlink_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ReportFolderError, match=r"a symbolic link"):
        prepare_report_folder(tmp_path / "link", overwrite=True)


def test_missing_parents_are_created(tmp_path):
    folder = prepare_report_folder(tmp_path / "a" / "b" / "report")
    (folder.tmp / "report.md").write_text("# r\n")
    out = folder.commit(["report.md"])
    assert out == tmp_path / "a" / "b" / "report" and is_report(out)
    assert Path(out / "report.md").read_text() == "# r\n"


def test_two_audits_on_one_out_never_replace_each_other(tmp_path):
    """Two audits started on the same --out: the second refuses before training, the first
    keeps its report (before, both exited 0 and the first report was silently replaced)."""
    import signal
    import time

    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "vaeloss", "audit", "--out", str(out), "--sweep", "none"]
    slow = f"{Path(__file__).parent / 'models' / 'slow_vae.py'}:SlowVAE"  # trains for its whole budget
    first = subprocess.Popen(
        [*cmd, "--model", slow], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / ".report.lock").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = subprocess.run([*cmd, *QUICK], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert second.stderr.startswith(
            f"error: Expected --out to be free but got out={str(out)!r}, which another vaeloss audit "
            f"(process {first.pid}) is writing its report to now."
        )
        assert "epoch" not in second.stderr  # refused before training
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # its partial report; the lock gone


def test_a_lock_left_by_a_crashed_audit_is_taken_over(tmp_path):
    (tmp_path / ".r.lock").write_text(json.dumps({"tool": "vaeloss", "pid": 999999999}))
    folder = prepare_report_folder(tmp_path / "r")
    assert json.loads((tmp_path / ".r.lock").read_text())["pid"] == os.getpid()
    folder.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_vaeloss_did_not_write_is_left_alone(tmp_path):
    (tmp_path / ".r.lock").write_text("someone else's\n")
    with pytest.raises(
        ReportFolderError, match=r"with a file '.r.lock' beside it that vaeloss did not write"
    ):
        prepare_report_folder(tmp_path / "r")
    assert (tmp_path / ".r.lock").read_text() == "someone else's\n"
