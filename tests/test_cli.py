import json

import pytest

from vaeloss import __version__
from vaeloss.cli import main
from vaeloss.objective.presets import PRESETS


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("explain", "check", "audit"):
        assert cmd in out


@pytest.mark.parametrize(
    ("name", "formula", "value"),
    [
        pytest.param("size_average", "B*D", "100,352", id="size_average"),
        pytest.param("keras_blog", "D/k", "39.2", id="keras_blog"),
        pytest.param("keras_docs", "1", "1", id="keras_docs"),
        pytest.param("sse_sum", "1/2", "0.5", id="sse_sum"),
        pytest.param("pytorch_vae", "D/8000", "0.098", id="pytorch_vae"),
    ],
)
def test_explain_prints_formula_and_value(capsys, name, formula, value):
    assert main(["explain", name, "--batch-size", "128", "--data-dim", "784", "--latent-dim", "20"]) == 0
    out = capsys.readouterr().out
    assert f"effective beta: {formula} = {value} at B=128, D=784, k=20" in out


def test_explain_json_all_presets(capsys):
    assert main(["explain", "--json", "-B", "64", "-D", "100", "-k", "4"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["convention"] for r in rows] == list(PRESETS)
    by = {r["convention"]: r for r in rows}
    assert by["size_average"]["effective_beta"] == 6400
    assert by["keras_blog"]["effective_beta"] == 25


def test_explain_table(capsys):
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    assert "size_average" in out and "B*D" in out


def test_unknown_convention_is_exit_2(capsys):
    assert main(["explain", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Expected a convention name but got convention='nope'")


def test_bad_option_is_exit_2(capsys):
    assert main(["explain", "size_average", "--batch-size", "0"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_cli_shim_behaves_like_the_command():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    shim = subprocess.run(
        [sys.executable, "cli.py", "explain", "keras_blog"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    module = subprocess.run(
        [sys.executable, "-m", "vaeloss", "explain", "keras_blog"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shim.returncode == module.returncode == 0
    assert shim.stdout == module.stdout and "D/k" in shim.stdout
    bad = subprocess.run(
        [sys.executable, "cli.py", "explain", "nope"], cwd=root, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_cli_start_up_does_not_import_torch():
    """`vaeloss --help` and the parent process of `vaeloss check` stay light: torch is
    imported only by the commands that compute (and by check's worker process)."""
    import subprocess
    import sys

    code = (
        "import sys; from vaeloss.cli import build_parser; build_parser(); "
        "import vaeloss.check.runner; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_exit_status_contract_is_stated_in_help_and_readme(capsys):
    from pathlib import Path

    from vaeloss.exit_codes import ExitCode

    assert main(["audit", "--help"]) == 0
    help_text = capsys.readouterr().out
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for code in ExitCode:
        assert f"\n  {int(code):<4} " in help_text
        assert f"\n| {int(code)} | " in readme
    assert "--overwrite" in help_text and ".vaeloss-report" in help_text


def test_check_help_states_its_exit_statuses(capsys):
    from vaeloss.exit_codes import ExitCode

    assert main(["check", "--help"]) == 0
    help_text = capsys.readouterr().out
    for code in (
        ExitCode.OK,
        ExitCode.FINDING,
        ExitCode.USAGE_ERROR,
        ExitCode.INTERNAL_ERROR,
        ExitCode.SIGINT,  # Ctrl-C during a check: 130, which its help did not list
        ExitCode.SIGPIPE,
    ):
        assert f"\n  {int(code):<4} " in help_text


def test_a_closed_pipe_is_exit_141_and_no_error():
    """`vaeloss explain | head -1`: the reader closes the pipe before vaeloss writes."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    done = subprocess.run(
        [sys.executable, "-m", "vaeloss", "explain"],
        stdout=write,
        stderr=subprocess.PIPE,
        check=False,
    )
    os.close(write)
    assert done.returncode == 141
    assert done.stderr == b""


def test_internal_error_is_one_line_and_exit_3(capsys, monkeypatch):
    """A bug is not bad input: its own exit status (3), as pytest's INTERNAL_ERROR is."""
    import vaeloss.objective.explain as explain

    def broken(*args, **kwargs):
        return {}["missing"]

    monkeypatch.setattr(explain, "explain_convention", broken)
    assert main(["explain", "keras_blog"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: this is a bug in vaeloss, please report it: KeyError: 'missing' (at ")
    assert err.count("\n") == 1 and "Traceback" not in err
