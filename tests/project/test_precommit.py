"""The pre-commit hook: the repository's ``.pre-commit-hooks.yaml`` read by pre-commit's own
manifest loader, and the README's local hook run by a real ``pre-commit run`` on a project."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "vaeloss" / "examples"
clientlib = pytest.importorskip("pre_commit.clientlib")


def _readme_hook_config():
    text = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"```yaml\n(# \.pre-commit-config\.yaml\n.*?)```", text, re.S)
    return block


def test_the_manifest_is_valid_and_checks_changed_python_files_and_notebooks():
    (hook,) = clientlib.load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "vaeloss-check" and hook["pass_filenames"] is True
    assert hook["types_or"] == ["python", "jupyter"]
    assert f"entry: {hook['entry']}" in _readme_hook_config()  # the README's hook runs the same command


@pytest.mark.slow
def test_the_readme_hook_passes_a_file_without_a_loss_and_fails_a_bad_loss(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / ".pre-commit-config.yaml").write_text(_readme_hook_config())
    shutil.copy(ROOT / "tests" / "check" / "inline" / "classifier_loop.py", tmp_path / "classifier.py")
    shutil.copy(EXAMPLES / "mean_bce_sum_kld.py", tmp_path / "averaged.py")
    git("init", "-q")
    git("add", "-A")
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable)
        + os.pathsep
        + os.environ["PATH"],  # the project's environment
        "PRE_COMMIT_HOME": str(tmp_path.parent / "pre-commit-home"),
    }

    def run(*files):
        command = [sys.executable, "-m", "pre_commit", "run", "--files", *files]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    passed = run("classifier.py")
    assert passed.returncode == 0 and re.search(r"vaeloss check\.+Passed", passed.stdout), passed.stdout
    failed = run("averaged.py", "classifier.py")
    assert failed.returncode == 1 and re.search(r"vaeloss check\.+Failed", failed.stdout)
    assert re.search(
        r"averaged\.py:5 +loss_function +bernoulli +B\*D +error beta-depends-on-batch-size", failed.stdout
    )
