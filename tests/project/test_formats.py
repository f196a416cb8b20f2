"""The summary's formats on outcomes made here (tests of project/formats.py): escaping of
GitHub's workflow commands, notebook locations, the text table, SARIF's locations."""

import json
from pathlib import Path

from vaeloss.check.result import Finding
from vaeloss.project.formats import github_annotations, markdown_summary, sarif, text_summary
from vaeloss.project.outcome import FileOutcome
from vaeloss.project.run import ProjectResult

BATCH = Finding("beta-depends-on-batch-size", "error", "100% off\nsecond line", 4, "line 4")
ODD = FileOutcome(
    "dir,a/odd:name.py", "checked", 1, line=3, where="line 3", target="loss|fn", likelihood="gaussian",
    beta="B*D/2", findings=(BATCH,),
)  # fmt: skip
NOTEBOOK = FileOutcome(
    "nb.ipynb", "checked", 0, line=12, where="cell 4, line 1", target="vae_loss", likelihood="bernoulli",
    beta="1", findings=(Finding("kl-factor-two", "info", "twice", 13, "cell 4, line 2"),), report={},
)  # fmt: skip
FAILED = FileOutcome("slow.py", "failed", 2, reason="Expected it to load\nmore detail")
NO_LOSS = FileOutcome("data.py", "no loss", 0, reason="no function computes both")
RESULT = ProjectResult(Path("/tmp/p"), (ODD, NOTEBOOK, FAILED, NO_LOSS))


def test_github_commands_escape_data_and_properties():
    lines = github_annotations(RESULT).splitlines()
    assert lines[0] == (
        "::error file=dir%2Ca/odd%3Aname.py,line=4,title=vaeloss beta-depends-on-batch-size"
        "::100%25 off%0Asecond line"
    )
    assert lines[1] == "::notice file=nb.ipynb,title=vaeloss kl-factor-two::nb.ipynb (cell 4, line 2): twice"
    assert (
        lines[2]
        == "::error file=slow.py,title=vaeloss%3A could not be checked::Expected it to load%0Amore detail"
    )
    assert len(lines) == 3


def test_the_text_table_and_its_sections():
    text = text_summary(RESULT)
    header, odd, notebook = text.splitlines()[:3]
    assert header.split() == ["FILE:LINE", "TARGET", "LIKELIHOOD", "EFFECTIVE", "BETA", "WORST", "FINDING"]
    assert odd.split() == [
        "dir,a/odd:name.py:3",
        "loss|fn",
        "gaussian",
        "B*D/2",
        "error",
        "beta-depends-on-batch-size",
    ]
    assert notebook.startswith("nb.ipynb (cell 4, line 1) ")
    assert "\nfindings:\n  dir,a/odd:name.py:4: error [beta-depends-on-batch-size] 100% off" in text
    assert "\n  nb.ipynb (cell 4, line 2): info [kl-factor-two] twice" in text
    assert "\ncould not be checked:\n  slow.py: Expected it to load\n    more detail\n" in text
    assert text.endswith(
        "vaeloss check: 4 files, 2 losses checked, 1 could not be checked, 1 without a VAE loss"
    )


def test_markdown_escapes_table_cells():
    text = markdown_summary(RESULT)
    assert (
        "| `dir,a/odd:name.py:3` | loss\\|fn | gaussian | `B*D/2` | error `beta-depends-on-batch-size` |"
        in text
    )
    assert "- `slow.py`: Expected it to load\n" in text


def test_sarif_places_findings_and_leaves_a_notebook_without_a_region():
    log = json.loads(sarif(RESULT))
    results = log["runs"][0]["results"]
    odd, notebook = (r["locations"][0]["physicalLocation"] for r in results)
    assert odd == {
        "artifactLocation": {"uri": "dir,a/odd:name.py", "uriBaseId": "SRCROOT"},
        "region": {"startLine": 4},
    }
    assert "region" not in notebook and results[1]["message"]["text"] == "cell 4, line 2: twice"
    assert [r["level"] for r in results] == ["error", "note"]
