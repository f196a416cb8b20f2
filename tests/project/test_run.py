"""``vaeloss check PATH...`` on the fixture project (tests of project/run.py through the CLI):
every loss found and checked with the beta derived by hand, the files that cannot be checked
each one line with its reason, the others still checked; the four formats; the cache."""

import json
import re
import subprocess
import sys

import pytest
from project_material import EXPERIMENT_LOSS, EXPERIMENT_UTILS

from vaeloss.cli import main

# Effective betas derived by hand (B batch size, D data dim), per file:
EXPECTED = {
    # sum_data (x - r)^2 per sample + 4 * KL: the unit-variance Gaussian NLL is half of it: 4/2
    "vae/losses.py": ("vae_loss", "gaussian", "2"),
    # BCE summed / B + 0.5 * mean_batch(KL summed over latent dims)
    "notebooks/explore.ipynb": ("vae_loss", "bernoulli", "1/2"),
    # BCE averaged over B*D elements + 0.5 (args.kl_weight's default) * KL summed over the batch
    "train.py": ("the loss computed inline at lines 46-48", "bernoulli", "B*D/2"),
    # BCE summed + kl_weight * KLD summed, kl_weight of each folder's own utils.py
    "exp_a/loss.py": ("loss_function", "bernoulli", "1"),
    "exp_b/loss.py": ("loss_function", "bernoulli", "3"),
    # D * mean BCE + c * KL per sample, c = 2 from [tool.vaeloss.targets]
    "experiments/weighted.py": ("vae_loss", "bernoulli", "2"),
    # BCE(size_average=True): mean over B*D elements, KLD summed
    "experiments/averaged.py": ("loss_function", "bernoulli", "B*D"),
    # BCE summed + KLD summed; its `import cli_config` exits, and is skipped (said in its report)
    "broken/exits.py": ("loss_function", "bernoulli", "1"),
}


pytestmark = pytest.mark.xdist_group("project-check")  # one worker: the fixture project is built once


def _run(capsys, *args):
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tree(root):
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.relative_to(root).parts
    )


@pytest.fixture(scope="session")  # one project per worker, whatever runs in between
def first_run(project):
    """The first, uncached run's text output (through a subprocess: a user's command). The
    file that hangs then leaves the project: it costs the whole timeout in every run (a
    failure is never cached), and the later runs have a failure that is quick (needs_gpu.py)."""
    command = [sys.executable, "-m", "vaeloss", "check", "."]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600, check=False)
    for args in (["rm", "-q", "broken/hangs.py"], ["commit", "-q", "-m", "drop the script that hangs"]):
        subprocess.run(
            ["git", "-c", "user.name=r", "-c", "user.email=r@example.org", *args], cwd=project, check=True
        )
    return done


@pytest.mark.slow
def test_every_loss_is_checked_with_its_beta_and_the_rest_said(project, first_run):
    assert first_run.returncode == 2, first_run.stderr  # a file could not be checked
    out = first_run.stdout
    assert "Traceback" not in out + first_run.stderr
    rows = {
        line.split()[0].split(":")[0]: line
        for line in out.splitlines()[1:]
        if line and not line.startswith(" ")
    }
    for path, (target, likelihood, beta) in EXPECTED.items():
        row = next(line for key, line in rows.items() if key.startswith(path))
        assert target[:40] in row and re.search(rf"\s{likelihood}\s+{re.escape(beta)}\s", row), row
    assert "could not be checked:\n" in out
    assert re.search(
        r"\n  broken/hangs\.py: Expected hangs\.py to load within timeout=10 s .*\(the import phase\)", out
    )
    assert "not read:\n  broken/blob.py: a binary file, not Python source" in out
    assert ".venv" not in out and "classifier.py" not in out.split("vaeloss check:")[0]
    # bce-on-continuous-data of the 7 Bernoulli losses, and the marked deprecation: 8
    assert "without a VAE loss" in out and "; 8 findings ignored" in out
    # the ignores: the comment drops the deprecation on its line, the configuration every BCE note
    assert "deprecated-reduction-argument" not in out and "bce-on-continuous-data" not in out
    assert "experiments/weighted.py" not in out.split("findings:")[1]  # its expect-beta holds


@pytest.mark.slow
def test_nothing_but_the_cache_is_written_and_git_ignores_it(project, first_run):
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=project, capture_output=True, text=True
    )
    assert status.stdout == ""  # the cache folder ignores itself
    assert (project / ".vaeloss_cache" / ".gitignore").read_text() == "*\n"


@pytest.mark.slow
def test_with_no_cache_nothing_at_all_is_written(tmp_path, capsys):
    (tmp_path / "loss.py").write_text(EXPERIMENT_LOSS)
    (tmp_path / "utils.py").write_text(EXPERIMENT_UTILS.format(weight=0.5))
    before = _tree(tmp_path)
    code, out, _ = _run(capsys, str(tmp_path), "--no-cache")
    assert code == 0 and re.search(r"loss\.py:6 +loss_function +bernoulli +1/2 ", out), out
    assert _tree(tmp_path) == before


@pytest.mark.slow
def test_a_second_run_reads_the_cache(project, first_run, capsys):
    code, out, err = _run(capsys, str(project))
    assert code == 2
    assert "from the cache" in out
    counts = out.rsplit("vaeloss check: ", 1)[1]
    expected = "17 files, 8 losses checked, 1 could not be checked, 7 without a VAE loss, 1 not read"
    assert counts.startswith(expected + ", 15 from the cache")  # the failure is checked again
    failure = r"\n  broken/needs_gpu\.py: .*\(calling the loss\): .*\n    binary data .*: RuntimeError: "
    assert re.search(failure + "this loss runs on the GPU only\n", out)


@pytest.mark.slow
def test_json_has_one_object_per_file(project, first_run, capsys):
    code, out, _ = _run(capsys, str(project), "--format", "json")
    data = json.loads(out)
    assert data["exit_code"] == code == 2
    targets = {t["path"]: t for t in data["targets"]}
    for path, (_, likelihood, beta) in EXPECTED.items():
        assert targets[path]["status"] == "checked" and targets[path]["effective_beta"] == beta
        assert targets[path]["report"]["likelihood"] == likelihood  # the single-target --json object
    assert (
        targets["broken/needs_gpu.py"]["status"] == "failed"
        and targets["classifier.py"]["status"] == "no loss"
    )


_COMMAND = re.compile(r"^::(error|warning|notice) (?P<props>[^:]*)::(?P<message>.*)$")


def _unescape(text):
    return (
        text.replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


@pytest.mark.slow
def test_github_commands_parse_back_and_the_step_summary_is_written(
    project, first_run, capsys, tmp_path, monkeypatch
):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = _run(capsys, str(project), "--format", "github")
    assert code == 2
    parsed = []
    for line in out.splitlines():
        m = _COMMAND.match(line)
        assert m, line
        props = dict(p.split("=", 1) for p in m["props"].split(","))
        parsed.append(
            (
                m[1],
                _unescape(props["file"]),
                props.get("line"),
                _unescape(props["title"]),
                _unescape(m["message"]),
            )
        )
    batch = [p for p in parsed if p[3] == "vaeloss beta-depends-on-batch-size"]
    assert {(p[0], p[1]) for p in batch} == {("error", "train.py"), ("error", "experiments/averaged.py")}
    assert all(p[2] is not None and p[2].isdigit() for p in batch)
    failed = {p[1]: p[4] for p in parsed if p[3] == "vaeloss: could not be checked"}
    assert set(failed) == {"broken/needs_gpu.py"}
    notebook = [p for p in parsed if p[1] == "notebooks/explore.ipynb"]
    assert notebook and all(p[2] is None and "(cell 4, line " in p[4] for p in notebook)
    text = summary.read_text()
    assert (
        text.startswith("earlier step\n## vaeloss check\n")
        and "| `vae/losses.py:6` | vae_loss | gaussian | `2` |" in text
    )


@pytest.mark.slow
def test_sarif_has_the_required_fields_of_2_1_0(project, first_run, capsys):
    from vaeloss.check.findings import CODES

    code, out, _ = _run(capsys, str(project), "--format", "sarif")
    log = json.loads(out)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "vaeloss"
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(CODES)  # one rule per finding code, with help
    assert all(r["help"]["text"] and r["shortDescription"]["text"] for r in rules)
    for result in run["results"]:
        assert result["message"]["text"]  # required: message
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uriBaseId"] == "SRCROOT"
        if not location["artifactLocation"]["uri"].endswith(".ipynb"):
            assert location["region"]["startLine"] >= 1
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == project.resolve().as_uri() + "/"
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert {
        n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for n in invocation["toolExecutionNotifications"]
    } == {"broken/needs_gpu.py"}


def test_one_file_options_on_a_project_are_refused_with_the_way_to_give_them(tmp_path, capsys):
    code, _, err = _run(capsys, str(tmp_path), "--arg", "c=2")
    assert code == 2
    assert err.startswith("error: Expected --arg only when checking one file but got --arg with targets=")
    assert '[tool.vaeloss.targets."FILE"] in pyproject.toml' in err


def test_a_missing_path_is_exit_2_naming_it(tmp_path, capsys):
    code, _, err = _run(capsys, str(tmp_path), str(tmp_path / "nope"))
    assert code == 2 and "path=" in err and "which does not exist" in err


def test_a_folder_without_python_files_is_exit_2_not_a_pass(tmp_path, capsys):
    """A mistyped or empty folder in CI must fail, not report '0 files' and exit 0."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no code here\n")
    code, out, err = _run(capsys, str(tmp_path / "empty"))
    assert code == 2 and out == ""
    assert re.match(
        r"error: Expected Python files or notebooks to check but got none under paths='.*empty'", err
    )
    assert "Try the folder that holds your code" in err


NEEDS_A_WEIGHT = """\
import torch
import torch.nn.functional as F


def vae_loss(recon, x, mu, logvar, kl_weight):
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return F.binary_cross_entropy(recon, x, reduction="sum") + kl_weight * kld
"""


@pytest.mark.slow
def test_a_value_to_give_is_said_as_the_projects_table_and_giving_it_checks_the_loss(tmp_path, capsys):
    (tmp_path / "loss.py").write_text(NEEDS_A_WEIGHT)
    code, out, _ = _run(capsys, str(tmp_path), "--no-cache")
    assert code == 2
    hint = 'Try in pyproject.toml: [tool.vaeloss.targets."loss.py"] with args = { kl_weight = VALUE }'
    assert "  loss.py: Expected values for the required argument(s) kl_weight of vae_loss but got none" in out
    assert f"\n    {hint}\n" in out and str(tmp_path) not in out  # paths as the summary shows them
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vaeloss.targets."loss.py"]\nargs = { kl_weight = 0.25 }\n'
    )
    code, out, _ = _run(capsys, str(tmp_path), "--no-cache")
    # BCE summed + 0.25 * KLD summed: beta 1/4
    assert code == 0 and re.search(r"loss\.py:5 +vae_loss +bernoulli +1/4 ", out), out
    assert out.rstrip().endswith("vaeloss check: 1 file, 1 loss checked")
