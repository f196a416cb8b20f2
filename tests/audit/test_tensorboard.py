"""`vaeloss audit --tensorboard DIR`: each sweep member is a TensorBoard run (tests of
audit/tensorboard.py), read back with TensorBoard's own event reader and compared with the
report's history.csv and metrics.json."""

import json
import sys

import pandas as pd
import pytest

from vaeloss.audit.tensorboard import CURVES
from vaeloss.cli import main

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
plugin_data_pb2 = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")
QUICK = ["--epochs", "3", "--iwae-samples", "10"]
FINAL_TAGS = [
    ("iwae_nll", "final/iwae_nll"),
    ("kl", "final/kl"),
    ("recon", "final/recon"),
    ("mutual_information", "final/mi"),
    ("active_units", "final/active_units"),
]


def _runs(folder):
    out = {}
    for run in sorted(p for p in folder.iterdir() if p.is_dir()):
        acc = event_accumulator.EventAccumulator(str(run), size_guidance={"scalars": 0})
        acc.Reload()
        out[run.name] = acc
    return out


def _hparams(acc):
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {
        k: v.number_value if v.HasField("number_value") else v.string_value for k, v in info.hparams.items()
    }


def test_each_member_is_a_run_with_its_curves_and_final_metrics(tmp_path, capsys):
    out, board = tmp_path / "report", tmp_path / "runs"
    assert main(["audit", *QUICK, "--sweep", "1e-3,1", "--out", str(out), "--tensorboard", str(board)]) == 0
    stdout = capsys.readouterr().out
    assert f"tensorboard: a run per model in {board / 'report'} (tensorboard --logdir {board})" in stdout
    history = pd.read_csv(out / "history.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tensorboard_dir"] == str(board / "report")
    runs = _runs(board / "report")
    assert list(runs) == ["m0-beta=0.001", "m1-beta=1"]
    for i, acc in enumerate(runs.values()):
        rows = history[history["model"] == i]
        for column, tag in CURVES.items():
            events = acc.Scalars(tag)
            assert [e.step for e in events] == rows["step"].tolist()
            assert [e.value for e in events] == pytest.approx(rows[column].tolist(), rel=1e-6)
        last_dim = [e.value for e in acc.Scalars("collapse/kl_dim/z07")]
        assert last_dim == pytest.approx(rows["kl_7"].tolist(), rel=1e-6)
        expected = metrics["sweep"][i]
        for name, tag in FINAL_TAGS:
            (event,) = acc.Scalars(tag)
            assert event.value == pytest.approx(expected[name], rel=1e-6), name
        assert acc.Scalars("final/collapsed")[0].value == float(expected["collapsed"])
        hparams = _hparams(acc)
        assert hparams["beta"] == expected["beta_own"] and hparams["beta_elbo"] == expected["beta_elbo"]
        assert hparams["seed"] == 0 and hparams["verdict"] == expected["verdict"]


def test_an_existing_audit_of_the_same_name_is_kept(tmp_path, capsys):
    board = tmp_path / "runs"
    (board / "report" / "mine").mkdir(parents=True)
    (board / "report" / "mine" / "notes.txt").write_text("keep me")
    args = ["audit", "--epochs", "1", "--sweep", "none", "--iwae-samples", "10", "--tensorboard", str(board)]
    assert main([*args, "--out", str(tmp_path / "report")]) == 0
    assert sorted(p.name for p in board.iterdir()) == ["report", "report-2"]
    assert (board / "report" / "mine" / "notes.txt").read_text() == "keep me"
    assert [p.name for p in (board / "report-2").iterdir()] == ["m0-beta=1"]
    assert "a run per model in" in capsys.readouterr().out


def test_a_file_as_the_folder_is_exit_2_before_training(tmp_path, capsys):
    target = tmp_path / "runs"
    target.write_text("keep me")
    assert main(["audit", "--epochs", "1", "--out", str(tmp_path / "r"), "--tensorboard", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Expected --tensorboard to be a folder but got tensorboard=")
    assert "an existing file. Try --tensorboard runs/." in err
    assert target.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_without_tensorboard_installed_the_extra_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    args = ["audit", "--epochs", "1", "--out", str(tmp_path / "r"), "--tensorboard", str(tmp_path / "tb")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Expected tensorboard to be installed")
    assert "pip install 'vaeloss[tensorboard]'" in err
    assert list(tmp_path.iterdir()) == []
