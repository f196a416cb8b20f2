"""`vaeloss audit --shard I/N` and `vaeloss merge DIR... --out DIR`: the shards of a sweep,
merged, equal the sweep run in one process with the same seeds (rows, verdicts, spreads, the
recommendation); shards of different audits, a missing or repeated shard, a whole audit's
report and files changed since the shards ran are refused with exit 2, nothing written."""

import json

import pytest

from vaeloss.cli import main

pytestmark = pytest.mark.slow

SWEEP = [
    "--sweep",
    "0.1,1,10",
    "--seeds",
    "2",
    "--epochs",
    "12",
    "--eval-budget",
    "1000",
    "--iwae-samples",
    "40",
]
METRICS = ("kl", "recon", "mutual_information", "iwae_nll", "iwae_se", "aggregate_kl", "output_diversity")


def _audit(folder, *extra):
    return main(["audit", *SWEEP, "--out", str(folder), *extra])


def _json(folder):
    return json.loads((folder / "metrics.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The sweep (3 betas x 2 seeds) in one process, and as 4 shards (2, 2, 1 and 1 models:
    a boundary between a beta's two seeds), each in its own folder."""
    root = tmp_path_factory.mktemp("shards")
    assert _audit(root / "whole") == 0
    for i in range(1, 5):
        assert _audit(root / f"shard{i}", "--shard", f"{i}/4") == 0
    return root


def test_merged_shards_equal_the_sweep_run_as_one(runs, capsys):
    code = main(["merge", *(str(runs / f"shard{i}") for i in (3, 1, 4, 2)), "--out", str(runs / "merged")])
    assert code == 0, capsys.readouterr().err
    expected, actual = _json(runs / "whole"), _json(runs / "merged")
    assert len(actual["sweep"]) == 6
    for e, a in zip(expected["sweep"], actual["sweep"]):
        assert (a["beta_elbo"], a["seed"], a["verdict"], a["active_units"]) == (
            e["beta_elbo"],
            e["seed"],
            e["verdict"],
            e["active_units"],
        )
        assert a["epochs"] == e["epochs"] and a["converged"] == e["converged"]
        for name in METRICS:
            assert a[name] == pytest.approx(e[name], rel=1e-5, abs=1e-7), name
    assert actual["verdict"] == expected["verdict"]
    assert actual["recommended_beta"] == expected["recommended_beta"]
    for e, a in zip(expected["per_beta"], actual["per_beta"]):
        assert a["iwae_nll"]["mean"] == pytest.approx(e["iwae_nll"]["mean"], rel=1e-5)
        assert a["active_units"] == e["active_units"]
    assert actual["shard"] is None and [g["shard"] for g in actual["groups"]] == [1, 2, 3, 4]
    report = (runs / "merged" / "report.md").read_text()
    assert "## Where it ran (4 groups)" in report and "shard 3/4: " in report
    files = {p.name for p in (runs / "merged").iterdir()}
    assert {"rate_distortion.png", "curves.png", "kl_per_dim.png", "reconstructions.png"} <= files
    assert f"merged 4 shards into {runs / 'merged'}" in capsys.readouterr().err


def test_a_shard_report_says_what_it_has_and_recommends_nothing(runs):
    """Shard 2/4 has models 2 and 3 (beta 1, both seeds: the audited beta)."""
    res = _json(runs / "shard2")
    assert res["shard"] == {"index": 2, "count": 4}
    assert [r["verdict"] == "not measured" for r in res["sweep"]] == [True, True, False, False, True, True]
    assert res["recommended_beta"] is None and res["identity"] and res["options"]["seeds"] == 2
    report = (runs / "shard2" / "report.md").read_text()
    assert "**SHARD 2/4 OF AN AUDIT: trained models 2-3 of 6 (ELBO beta 1)" in report
    assert "No recommendation in a shard (shard 2/4 has part of the sweep)" in report
    assert "Cost, measured before training: one step of the 2 models " in report
    assert " of 2 trained in this shard (of the sweep's 6) converged" in report
    first = _json(runs / "shard1")
    assert first["verdict"] == "not measured"
    assert first["headline"] == "not measured here: shard 2/4 trains it (vaeloss merge joins the shards)"


def _merge(capsys, *folders, out):
    code = main(["merge", *map(str, folders), "--out", str(out)])
    return code, capsys.readouterr().err


def test_a_missing_or_repeated_shard_is_refused(runs, capsys, tmp_path):
    code, err = _merge(capsys, runs / "shard1", runs / "shard3", runs / "shard4", out=tmp_path / "m")
    assert code == 2
    assert "error: Expected all 4 shards but got 3: shard 2/4 missing" in err
    assert "--shard 2/4" in err
    code, err = _merge(capsys, *(runs / f"shard{i}" for i in (1, 2, 2, 3, 4)), out=tmp_path / "m")
    assert code == 2 and "Expected each shard once but shard 2/4 is both" in err
    assert not (tmp_path / "m").exists()


def test_shards_of_another_audit_are_refused(runs, capsys, tmp_path):
    assert _audit(tmp_path / "other", "--shard", "2/4", "--seed", "7") == 0
    shards = [runs / "shard1", tmp_path / "other", runs / "shard3", runs / "shard4"]
    code, err = _merge(capsys, *shards, out=tmp_path / "m")
    assert code == 2
    assert "differ in their options: seed=0 and 7" in err
    assert not (tmp_path / "m").exists()


def test_a_whole_audits_report_or_a_folder_without_one_is_refused(runs, capsys, tmp_path):
    code, err = _merge(capsys, runs / "whole", out=tmp_path / "m")
    assert code == 2 and "is the report of a whole audit" in err
    code, err = _merge(capsys, tmp_path, out=tmp_path / "m")
    assert code == 2 and "Expected a shard's report folder (with metrics.json)" in err


def test_a_loss_file_changed_since_the_shards_ran_is_refused(tmp_path, capsys, monkeypatch):
    loss = tmp_path / "my_loss.py"
    loss.write_text(
        "import torch.nn.functional as F\n\n\n"
        "def loss_function(recon_x, x, mu, logvar):\n"
        "    bce = F.binary_cross_entropy(recon_x, x, reduction='sum')\n"
        "    kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()\n"
        "    return bce + kld\n"
    )
    monkeypatch.chdir(tmp_path)
    args = ["--loss", str(loss), "--sweep", "none", "--epochs", "2", "--iwae-samples", "20"]
    assert main(["audit", *args, "--shard", "1/1", "--out", "s1"]) == 0
    capsys.readouterr()
    loss.write_text(loss.read_text().replace("return bce + kld", "return bce + 2 * kld"))
    code, err = _merge(capsys, tmp_path / "s1", out=tmp_path / "m")
    assert code == 2 and "changed since" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        (
            "5/4",
            "Expected --shard I/N with 1 <= I <= N but got shard='5/4'. Try --shard 1/4 ... --shard 4/4.",
        ),
        ("0/3", "got shard='0/3'"),
        ("two", "got shard='two'. Try --shard 1/4"),
        ("7/7", "Expected at most one shard per model (6 models: 3 betas x 2 seeds) but got shard='7/7'"),
    ],
    ids=["index-above-count", "index-zero", "not-a-fraction", "more-shards-than-models"],
)
def test_a_bad_shard_is_refused(tmp_path, capsys, shard, message):
    assert _audit(tmp_path / "r", "--shard", shard) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_shard_with_the_ray_executor_is_refused(tmp_path, capsys):
    assert _audit(tmp_path / "r", "--shard", "1/2", "--executor", "ray") == 2
    assert "Expected --shard without --executor ray but got shard='1/2'" in capsys.readouterr().err
