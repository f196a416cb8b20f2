"""A fixture project shaped like a researcher's repository, written by the tests: a package with
relative imports, a notebook, a training script computing its loss inline, two experiment
folders each with its own ``utils.py``, a vendored copy under ``.venv/``, a classifier, and
files that cannot be checked (one imports a module that hangs, one a module that exits, one is
binary)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests here import project_material too
from project_material import (  # noqa: E402
    CLI_CONFIG,
    EXITS,
    EXPERIMENT_LOSS,
    EXPERIMENT_UTILS,
    HANGS,
    NEEDS_GPU,
    PYPROJECT,
    SLOW_SETUP,
)

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "tests" / "check"
EXAMPLES = ROOT / "vaeloss" / "examples"


def _git(folder, *args):
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def make_project(root: Path) -> Path:
    (root / "vae").mkdir(parents=True)
    for name in ("__init__.py", "losses.py", "utils.py"):
        shutil.copy(CORPUS / "real" / "vaepkg" / name, root / "vae" / name)
    (root / "notebooks").mkdir()
    shutil.copy(CORPUS / "real" / "notebook_vae.ipynb", root / "notebooks" / "explore.ipynb")
    shutil.copy(CORPUS / "inline" / "script_loop.py", root / "train.py")
    shutil.copy(CORPUS / "inline" / "classifier_loop.py", root / "classifier.py")
    for exp, weight in (("exp_a", 1.0), ("exp_b", 3.0)):
        (root / exp).mkdir()
        (root / exp / "loss.py").write_text(EXPERIMENT_LOSS)
        (root / exp / "utils.py").write_text(EXPERIMENT_UTILS.format(weight=weight))
    (root / "experiments").mkdir()
    shutil.copy(EXAMPLES / "kl_weight_c.py", root / "experiments" / "weighted.py")
    text = (EXAMPLES / "mean_bce_sum_kld.py").read_text()
    text = text.replace(
        "size_average=True)", "size_average=True)  # vaeloss: ignore[deprecated-reduction-argument]"
    )
    (root / "experiments" / "averaged.py").write_text(text)
    vendored = root / ".venv" / "lib" / "python3.11" / "site-packages" / "somevae"
    vendored.mkdir(parents=True)
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    shutil.copy(EXAMPLES / "mean_bce_sum_kld.py", vendored / "loss.py")
    (root / "broken").mkdir()
    (root / "broken" / "hangs.py").write_text(HANGS)
    (root / "broken" / "exits.py").write_text(EXITS)
    (root / "broken" / "needs_gpu.py").write_text(NEEDS_GPU)
    (root / "broken" / "slow_setup.py").write_text(SLOW_SETUP)
    (root / "broken" / "cli_config.py").write_text(CLI_CONFIG)
    (root / "broken" / "blob.py").write_bytes(b"\x00\x01binary\x00" * 100)
    (root / "pyproject.toml").write_text(PYPROJECT)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(
        root,
        "-c",
        "user.name=researcher",
        "-c",
        "user.email=r@example.org",
        "commit",
        "-q",
        "-m",
        "experiments",
    )
    return root


@pytest.fixture(scope="session")  # one project per worker, whatever runs in between
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("project"))
